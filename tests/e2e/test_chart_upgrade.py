"""``helm upgrade`` from the previous chart version updates the CRD and loses no run.

Chart 0.1.0 shipped the CRD in its crds/ folder, which Helm installs once and never upgrades; from 0.2.0
the CRD is a template (``crds.enabled``, kept on uninstall with ``crds.keep``). On a private cluster (its
CRD state is this test's alone): install 0.1.0 from the commit that last shipped it, create a run, adopt
the CRD into the release as README's upgrade note says, upgrade to this checkout's chart, and check that
the CRD now has the new schema, the run is still there unchanged, a run using the new fields is
accepted, and uninstalling keeps the CRD and the runs.
"""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from e2e.conftest import kwok_only_clusters
from e2e.operator_harness import PrivateCluster
from e2e.specforgerun.conftest import GROUP, PLURAL, VERSION, wait_for
from e2e.test_chart_rbac import CHART_DIR, REPO_ROOT, run_tool
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from unit.operator.builders import run_manifest

pytestmark = pytest.mark.slow

# The last commit whose chart is 0.1.0 (CRD in crds/): the version users upgrade from.
PREVIOUS_CHART_COMMIT = "f2522766618e02b9478c656f76641bab106aa5a0"
CRD_NAME = f"{PLURAL}.{GROUP}"
RELEASE, OPS, RUNS = "sfo", "specforge-system", "team-a"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with kwok_only_clusters():
        private = PrivateCluster("chart-upgrade")
        try:
            private.up()
            yield private
        finally:
            private.down()


def _previous_chart(into: Path) -> Path:
    archive = into / "chart.tar"
    with archive.open("wb") as out:
        subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", PREVIOUS_CHART_COMMIT, "charts/specforge-operator"],
            stdout=out,
            check=True,
            timeout=60,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    chart = into / "charts" / "specforge-operator"
    assert yaml.safe_load((chart / "Chart.yaml").read_text())["version"] == "0.1.0"
    return chart


def _kept(before: object, after: object) -> bool:
    """Whether ``after`` holds everything ``before`` held, unchanged (it may hold more)."""
    if isinstance(before, dict) and isinstance(after, dict):
        return all(key in after and _kept(value, after[key]) for key, value in before.items())
    return before == after


def _established(extensions: k8s_client.ApiextensionsV1Api) -> bool:
    conditions = extensions.read_custom_resource_definition(CRD_NAME).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _trainer_fields(extensions: k8s_client.ApiextensionsV1Api) -> set[str]:
    crd = extensions.read_custom_resource_definition(CRD_NAME)
    spec = crd.spec.versions[0].schema.open_apiv3_schema.properties["spec"]
    return set(spec.properties["trainer"].properties)


def test_upgrade_from_the_previous_chart_updates_the_crd_and_keeps_runs(
    cluster: PrivateCluster, cluster_bin_dir: Path, tmp_path: Path
) -> None:
    helm = [str(cluster_bin_dir / "helm"), "--kubeconfig", cluster.kubeconfig]
    kubectl = [str(cluster_bin_dir / "kubectl"), "--kubeconfig", cluster.kubeconfig]
    api = k8s_config.new_client_from_config(config_file=cluster.kubeconfig)
    extensions, custom = k8s_client.ApiextensionsV1Api(api), k8s_client.CustomObjectsApi(api)
    k8s_client.CoreV1Api(api).create_namespace({"metadata": {"name": RUNS}})
    common = ["--namespace", OPS, "--set", f"watch.namespaces={{{RUNS}}}", "--set", "replicaCount=1"]

    run_tool(*helm, "install", RELEASE, str(_previous_chart(tmp_path)), "--create-namespace", *common)
    wait_for(lambda: _established(extensions), "the 0.1.0 chart's CRD to be established")
    assert "env" not in _trainer_fields(extensions), "the previous chart's CRD has no pod overrides"
    old_run = run_manifest("local_colocated", "before-upgrade")
    del old_run["metadata"]["namespace"]
    custom.create_namespaced_custom_object(GROUP, VERSION, RUNS, PLURAL, old_run)
    before = custom.get_namespaced_custom_object(GROUP, VERSION, RUNS, PLURAL, "before-upgrade")

    # README: a CRD installed from crds/ is adopted into the release once, before the first upgrade.
    run_tool(*kubectl, "label", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm")
    run_tool(
        *kubectl, "annotate", "crd", CRD_NAME,
        f"meta.helm.sh/release-name={RELEASE}", f"meta.helm.sh/release-namespace={OPS}",
    )  # fmt: skip
    run_tool(*helm, "upgrade", RELEASE, str(CHART_DIR), *common)

    assert {"env", "volumes", "acceleratorResource", "sharedMemorySize"} <= _trainer_fields(extensions)
    after = custom.get_namespaced_custom_object(GROUP, VERSION, RUNS, PLURAL, "before-upgrade")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    # Every field it had is unchanged; the new schema only adds its defaults (applied when it is read).
    assert _kept(before["spec"], after["spec"]), (before["spec"], after["spec"])
    assert after["spec"]["trainer"]["sharedMemorySize"] == "1Gi"
    new_run = run_manifest(
        "local_colocated", "after-upgrade", trainer={"env": [{"name": "NCCL_DEBUG", "value": "INFO"}]}
    )
    del new_run["metadata"]["namespace"]
    created = custom.create_namespaced_custom_object(GROUP, VERSION, RUNS, PLURAL, new_run)
    assert created["spec"]["trainer"]["env"] == [{"name": "NCCL_DEBUG", "value": "INFO"}]

    run_tool(*helm, "uninstall", RELEASE, "--namespace", OPS, "--wait")
    assert (
        extensions.read_custom_resource_definition(CRD_NAME).metadata.annotations.get(
            "helm.sh/resource-policy"
        )
        == "keep"
    )
    names = {
        run["metadata"]["name"]
        for run in custom.list_namespaced_custom_object(GROUP, VERSION, RUNS, PLURAL)["items"]
    }
    assert names == {"before-upgrade", "after-upgrade"}, "uninstalling the operator must not delete runs"
    api.close()
