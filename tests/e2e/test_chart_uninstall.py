"""Uninstalling the operator before deleting its runs leaves nothing stuck.

Runs carry no finalizer (the periodic resync is one operator-level loop, not a kopf timer per run), so a
run and its namespace are deleted by the API server alone: the operator need not be running. The chart is
installed for one namespace, its operator runs as the chart's ServiceAccount (out of cluster, as in
test_chart_rbac), reconciles a run, and is then stopped and uninstalled before the namespace is deleted.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from _support.operator_process import OperatorProcess
from e2e.conftest import KWOK_NODE_SELECTOR, KWOK_TOLERATIONS, LONG_RUN
from e2e.specforgerun import conftest as specforgerun_fixtures
from e2e.specforgerun.conftest import Runs, wait_for
from e2e.test_chart_rbac import CHART_DIR, create_namespace, request_token, run_tool, token_kubeconfig
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from unit.operator.builders import run_manifest

pytestmark = pytest.mark.slow
# The SpecForgeRun CRD, installed by the session (a fixture of tests/e2e/specforgerun, used here too).
crd_installed = specforgerun_fixtures.crd_installed


def _namespace_gone(core: k8s_client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_runs_carry_no_finalizer_and_their_namespace_deletes_after_uninstall(
    kubeconfig: str, kube_api: k8s_client.ApiClient, cluster_bin_dir: Path, tmp_path: Path, crd_installed: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    suffix = uuid.uuid4().hex[:6]
    release, ops, served = f"sfu-{suffix}", f"uninstall-ops-{suffix}", f"uninstall-runs-{suffix}"
    helm = str(cluster_bin_dir / "helm")
    create_namespace(core, ops)
    create_namespace(core, served)
    operator = None
    try:
        run_tool(
            helm, "install", release, str(CHART_DIR), "--namespace", ops,
            "--set", f"watch.namespaces={{{served}}}", "--set", f"peering.name={release}",
            "--set", "resyncSeconds=2", "--set", "crds.enabled=false",  # the session's CRD (crd_installed)
            "--set-json", f"tolerations={json.dumps(KWOK_TOLERATIONS)}",
            "--set-json", f"nodeSelector={json.dumps(KWOK_NODE_SELECTOR)}",
        )  # fmt: skip
        token = request_token(core, ops, f"{release}-specforge-operator")
        operator = OperatorProcess(
            str(token_kubeconfig(kubeconfig, token, tmp_path / "kubeconfig.yaml")),
            tmp_path / "operator.log",
            resync_seconds=2,
            scope_args=[f"--namespace={served}", f"--peering={release}"],
        )
        operator.wait_live()
        runs = Runs(kube_api, served)
        runs.create(run_manifest("local_colocated", "orphan", trainer={"podAnnotations": LONG_RUN}))
        runs.wait_phase("orphan", "Running", timeout=90)
        # kopf adds a finalizer before it first handles an object that needs one: by Running it would be there.
        run = runs.get("orphan")
        assert not run["metadata"].get("finalizers"), run["metadata"]
        operator.stop()
        operator = None
        run_tool(helm, "uninstall", release, "--namespace", ops, "--wait")
        core.delete_namespace(served)
        wait_for(lambda: _namespace_gone(core, served), f"namespace {served} to be deleted", timeout=90)
    finally:
        if operator is not None:
            operator.stop()
        subprocess.run([helm, "uninstall", release, "--namespace", ops], capture_output=True, timeout=120)
        for name in (ops, served):
            try:
                core.delete_namespace(name)
            except ApiException as error:
                if error.status != 404:
                    raise
