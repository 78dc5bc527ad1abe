"""Fixtures and helpers for the operator's e2e tests: the CRD installed, the operator running as a real
subprocess (``python -m specforge_operator``) against the test cluster, run helpers, and small
polling helpers (imported by the test modules as ``from e2e.specforgerun.conftest import ...``); the
per-test ``namespace`` fixture comes from tests/e2e/conftest.py.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.operator_process import OperatorProcess
from e2e.conftest import on_kwok_nodes, wait_for
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from specforge_operator.kube import KubeApi

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = REPO_ROOT / "crds" / "specforgeruns.specforge.io.yaml"
# Run examples only: examples/ also holds supporting objects (models-pvc.yaml), applied by test_chart_rbac.
EXAMPLES = sorted(
    path
    for path in (REPO_ROOT / "examples").glob("*.yaml")
    if [doc.get("kind") for doc in yaml.safe_load_all(path.read_text()) if doc] == ["SpecForgeRun"]
)
GROUP, VERSION, PLURAL = "specforge.io", "v1alpha1", "specforgeruns"


@pytest.fixture(scope="session")
def crd_installed(kube_api: k8s_client.ApiClient) -> str:
    extensions = k8s_client.ApiextensionsV1Api(kube_api)
    body = yaml.safe_load(CRD_PATH.read_text())
    try:
        extensions.create_custom_resource_definition(body)
    except ApiException as error:
        if error.status != 409:
            raise
        current = extensions.read_custom_resource_definition(body["metadata"]["name"])
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        extensions.replace_custom_resource_definition(body["metadata"]["name"], body)

    def established() -> bool:
        crd = extensions.read_custom_resource_definition(body["metadata"]["name"])
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    wait_for(established, "the SpecForgeRun CRD to be established")
    return body["metadata"]["name"]


@pytest.fixture(scope="session")
def operator_process(
    kubeconfig: str, crd_installed: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    process = OperatorProcess(
        kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log", resync_seconds=3
    )
    try:
        process.wait_live()
        yield process
    finally:
        process.stop()


@pytest.fixture
def kube(kube_api: k8s_client.ApiClient) -> KubeApi:
    """The operator's own client, pointed at the test cluster (dict in, dict out)."""
    return KubeApi(kube_api)


@pytest.fixture
def runs(kube_api: k8s_client.ApiClient, namespace: str) -> Runs:
    return Runs(kube_api, namespace)


class Runs:
    """SpecForgeRun CRUD in one namespace through the real API server.

    With ``on_kwok`` (the default) every run created tolerates the KWOK nodes' taint and selects them, so
    its trainer and producer pods are faked by KWOK; ``on_kwok=False`` leaves a run's pods to the scheduler
    (untolerating pods go to the real node when the cluster has one).
    """

    def __init__(self, kube_api: k8s_client.ApiClient, namespace: str, *, on_kwok: bool = True) -> None:
        self.api = k8s_client.CustomObjectsApi(kube_api)
        self.namespace = namespace
        self.on_kwok = on_kwok

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        body = on_kwok_nodes(manifest) if self.on_kwok else copy.deepcopy(manifest)
        body["metadata"]["namespace"] = self.namespace
        return self.api.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def delete(self, name: str) -> None:
        self.api.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def wait_phase(self, name: str, phase: str, timeout: float = 90.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            run = self.get(name)
            return run if (run.get("status") or {}).get("phase") == phase else None

        try:
            return wait_for(reached, f"run {name} to reach phase {phase}", timeout=timeout)
        except pytest.fail.Exception:
            status = self.get(name).get("status") or {}
            pytest.fail(f"run {name} never reached {phase}; last status:\n{yaml.safe_dump(status)}")

    def warning_reasons(self, name: str, expected: str) -> list[str]:
        """The run's Warning event reasons, once one is ``expected``: kopf posts events after the
        handler returns, so they can trail the status write the test saw."""

        def reasons() -> list[str]:
            events = k8s_client.CoreV1Api(self.api.api_client).list_namespaced_event(
                self.namespace, field_selector=f"involvedObject.name={name},type=Warning"
            )
            return [event.reason for event in events.items]

        wait_for(lambda: expected in reasons(), f"a {expected} warning on {name}", timeout=30)
        return reasons()


def load_example(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def condition(run: dict[str, Any], condition_type: str) -> dict[str, Any] | None:
    for item in (run.get("status") or {}).get("conditions") or []:
        if item["type"] == condition_type:
            return item
    return None
