"""Real pods: the project's images on the cluster's real node, the operator installed from its chart.

Everything under this package runs containers for real (the ``realnode`` marker): the session's
cluster must have a node labelled ``specforge.io/real-node=true`` (``make cluster-up`` starts one; the
kind path labels its worker). On the local cluster the fixture builds the images if needed and imports
them into the node (``hack/images.sh``: cached, a no-op when nothing changed), then installs the
operator with Helm (``hack/operator-install.sh``) and uninstalls it afterwards, so the operator the
tests talk to is the one users get: its image, its ServiceAccount and its RBAC.

The ``real_node`` and ``images_on_node`` fixtures live in tests/e2e/conftest.py: a cluster without a
real node skips this package, unless ``SPECFORGE_REQUIRE_REAL_NODE=1`` (as ``make test`` sets it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.conftest import HACK_DIR, run_script, wait_for
from e2e.specforgerun.conftest import GROUP, PLURAL, VERSION
from kubernetes import client as k8s_client
from specforge_trainer.train.checkpoint import WEIGHTS_FILE, latest_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = REPO_ROOT / "examples"
RUN_TIMEOUT_S = 900.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.realnode)
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.timeout(RUN_TIMEOUT_S * 3))


@pytest.fixture(scope="session")
def installed_operator(images_on_node: None, kubeconfig: str) -> Iterator[None]:
    # Other e2e tests of the session create runs with hostPath volumes, which the chart's admission policy
    # would refuse cluster-wide from here on; this single-node cluster is where the chart allows them.
    run_script(str(HACK_DIR / "operator-install.sh"), "--set", "hostPathVolumes.allowed=true", timeout=600)
    try:
        yield
    finally:
        run_script(str(HACK_DIR / "operator-install.sh"), "--uninstall", timeout=600)


def kubectl_apply(manifest: dict[str, Any], namespace: str) -> None:
    subprocess.run(
        ["kubectl", "apply", "-n", namespace, "-f", "-"],
        input=yaml.safe_dump(manifest),
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )


# The real node has the machine's CPUs (2 here): every pod of a run must fit at once, or a rank that
# cannot be scheduled leaves the others waiting in their rendezvous.
SMALL_POD = {"cpu": "200m", "memory": "2Gi"}


def load_example(name: str, **spec_overrides: Any) -> dict[str, Any]:
    """An example manifest, its pods sized for the real node, with spec sections merged in (one level deep)."""
    manifest = yaml.safe_load((EXAMPLES / name).read_text())
    for pool in ("trainer", "producers"):
        if manifest["spec"].get(pool) is not None:
            manifest["spec"][pool]["resources"] = dict(SMALL_POD)
    for key, value in spec_overrides.items():
        if isinstance(value, dict) and isinstance(manifest["spec"].get(key), dict):
            manifest["spec"][key] = {**manifest["spec"][key], **value}
        else:
            manifest["spec"][key] = value
    managed = (manifest["spec"].get("metadataStore") or {}).get("managed")
    if isinstance(managed, dict):
        managed.setdefault("keepAfterRun", True)  # the tests read the finished run's acks from its Redis
    return manifest


class RealRuns:
    def __init__(self, kube_api: k8s_client.ApiClient, namespace: str) -> None:
        self.custom = k8s_client.CustomObjectsApi(kube_api)
        self.core = k8s_client.CoreV1Api(kube_api)
        self.namespace = namespace

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)

    def wait_finished(self, name: str, timeout: float = RUN_TIMEOUT_S) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.get(name)
            return run if (run.get("status") or {}).get("phase") in ("Succeeded", "Failed") else None

        run = wait_for(finished, f"run {name} to finish", timeout=timeout, interval=2)
        if run["status"]["phase"] != "Succeeded":
            pytest.fail(f"run {name} failed:\n{yaml.safe_dump(run['status'])}\n{self.pod_logs(name)}")
        return run

    def pods(self, name: str, component: str | None = None) -> list[k8s_client.V1Pod]:
        selector = f"specforge.io/run={name}"
        if component:
            selector += f",app.kubernetes.io/component={component}"
        return self.core.list_namespaced_pod(self.namespace, label_selector=selector).items

    def pod_logs(self, name: str) -> str:
        logs = []
        for pod in self.pods(name):
            try:
                text = self.core.read_namespaced_pod_log(pod.metadata.name, self.namespace, tail_lines=30)
            except k8s_client.ApiException as error:
                text = f"(no log: {error.reason})"
            logs.append(f"--- {pod.metadata.name} ({pod.status.phase}) on {pod.spec.node_name}\n{text}")
        return "\n".join(logs)

    def claim_dir(self, claim: str) -> Path:
        """Where a bound claim's volume lives on the real node, which is this machine."""
        pvc = self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
        pv = self.core.read_persistent_volume(pvc.spec.volume_name)
        source = pv.spec.host_path or pv.spec.local
        return Path(source.path)


@pytest.fixture
def real_runs(kube_api: k8s_client.ApiClient, namespace: str, installed_operator: None) -> RealRuns:
    return RealRuns(kube_api, namespace)


def newest_weights(checkpoints: Path) -> bytes:
    newest = latest_checkpoint(checkpoints)
    assert newest, f"no checkpoint in {checkpoints}: {sorted(p.name for p in checkpoints.iterdir())}"
    return (newest / WEIGHTS_FILE).read_bytes()


def train_on_host(manifest: dict[str, Any], out: Path) -> bytes:
    """``specforge run`` of the same manifest here: the laptop path the cluster must agree with."""
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    env = {k: v for k, v in os.environ.items() if k != "SPECFORGE_METADATA_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "specforge_trainer.cli", "run", str(path), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return newest_weights(out)
