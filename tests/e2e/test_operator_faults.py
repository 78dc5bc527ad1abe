"""The operator survives faults on a real control plane: SIGKILL mid-batch, a kube-apiserver restart,
children deleted by hand, and two replicas at once (kopf peering: only one acts; the other takes over).

A private cluster (operator_harness), so killing operators and restarting its kube-apiserver disturbs
no other test; KWOK plays the kubelet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.conftest import LONG_RUN, kwok_only_clusters
from e2e.operator_harness import (
    PrivateCluster,
    delete_namespace,
    new_namespace,
    private_cluster,
    start_operator,
    wait_for_standby,
)
from e2e.specforgerun.conftest import Runs, wait_for
from kubernetes import client as k8s_client
from specforge_operator.kube import KubeApi
from unit.operator.builders import run_manifest

LOCAL_CHILDREN = [
    ("v1", "ConfigMap", "config"),
    ("v1", "ServiceAccount", "trainer"),
    ("rbac.authorization.k8s.io/v1", "Role", "progress"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", "progress"),
    ("batch/v1", "Job", "trainer"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with kwok_only_clusters(), private_cluster("ops-faults") as cluster:
        yield cluster


@pytest.fixture
def api(cluster: PrivateCluster) -> Iterator[k8s_client.ApiClient]:
    with cluster.api_client() as api:
        yield api


@pytest.fixture
def runs(api: k8s_client.ApiClient) -> Iterator[Runs]:
    namespace = new_namespace(api)
    yield Runs(api, namespace)
    delete_namespace(api, namespace)


def child_uids(kube: KubeApi, namespace: str, run: str) -> dict[str, str]:
    uids = {}
    for api_version, kind, suffix in LOCAL_CHILDREN:
        child = kube.get(api_version, kind, namespace, f"{run}-{suffix}")
        if child is not None:
            uids[f"{kind}/{run}-{suffix}"] = child["metadata"]["uid"]
    return uids


def converged(runs: Runs, count: int, prefix: str) -> bool:
    items = runs.api.list_namespaced_custom_object(
        "specforge.io", "v1alpha1", runs.namespace, "specforgeruns"
    )["items"]
    done = [
        item
        for item in items
        if item["metadata"]["name"].startswith(prefix)
        and (item.get("status") or {}).get("observedGeneration") == item["metadata"]["generation"]
        and len(item["status"].get("children", [])) == len(LOCAL_CHILDREN)
    ]
    return len(done) == count


def test_sigkill_mid_batch_then_restart_converges_without_recreating_children(
    cluster: PrivateCluster, runs: Runs, tmp_path: Path
) -> None:
    kube = KubeApi(runs.api.api_client)
    count = 60
    for index in range(count):
        runs.create(run_manifest("local_colocated", f"batch-{index}", suspend=True))
    first = start_operator(cluster, tmp_path, workers=2, wait_live=False)
    # Kill it part-way through the batch: a few trainer Jobs exist, most runs have none yet.
    wait_for(
        lambda: len(kube.list("batch/v1", "Job", runs.namespace, "specforge.io/run")) >= 5,
        "the first trainer Jobs",
        timeout=60,
        interval=0.05,
    )
    first.kill()
    before = {f"batch-{i}": child_uids(kube, runs.namespace, f"batch-{i}") for i in range(count)}
    partly = sum(1 for uids in before.values() if 0 < len(uids) < len(LOCAL_CHILDREN))
    untouched = sum(1 for uids in before.values() if not uids)
    assert untouched > 0, "the operator finished the batch before it was killed: the test proves nothing"

    second = start_operator(cluster, tmp_path)
    try:
        wait_for(lambda: converged(runs, count, "batch-"), f"all {count} runs converged", timeout=120)
        for name, uids in before.items():
            after = child_uids(kube, runs.namespace, name)
            assert len(after) == len(LOCAL_CHILDREN), (name, after)
            assert {key: after[key] for key in uids} == uids, f"{name}: a child was created twice"
        assert second.metric("specforge_children_total", action="restored") == 0
        print(f"killed with {untouched} runs untouched and {partly} part-way")
    finally:
        second.stop()


def wait_replaced(kube: KubeApi, namespace: str, key: tuple[str, str, str], old_uid: str) -> None:
    api_version, kind, name = key
    wait_for(
        lambda: (new := kube.get(api_version, kind, namespace, name)) and new["metadata"]["uid"] != old_uid,
        f"{kind} {name} restored",
        timeout=60,
    )


def test_children_deleted_by_hand_are_restored_and_state_survives(
    cluster: PrivateCluster, runs: Runs, tmp_path: Path
) -> None:
    api = runs.api.api_client
    kube = KubeApi(api)
    operator = start_operator(cluster, tmp_path)
    try:
        runs.create(
            run_manifest(
                "dataflow_colocated",
                "durable",
                trainer={"replicas": 2, "podAnnotations": LONG_RUN},
                metadataStore={"managed": {"persistence": {"enabled": True}}},
            )
        )
        runs.wait_phase("durable", "Running", timeout=90)
        progress = {"step": 120, "totalSteps": 400, "loss": 1.75}
        runs.api.patch_namespaced_custom_object_status(
            "specforge.io",
            "v1alpha1",
            runs.namespace,
            "specforgeruns",
            "durable",
            {"status": {"progress": progress}},
        )
        pvc = kube.get("v1", "PersistentVolumeClaim", runs.namespace, "durable-redis-data")
        secret = kube.get("v1", "Secret", runs.namespace, "durable-redis-auth")

        for api_version, kind, name in (
            ("apps/v1", "Deployment", "durable-redis"),
            ("kubeflow.org/v1", "PyTorchJob", "durable-trainer"),
        ):
            old = kube.get(api_version, kind, runs.namespace, name)
            kube.delete(api_version, kind, runs.namespace, name)
            wait_replaced(kube, runs.namespace, (api_version, kind, name), old["metadata"]["uid"])
        runs.wait_phase("durable", "Running", timeout=90)
        run = runs.get("durable")
        assert run["status"]["progress"]["step"] == 120, "the trainer's progress survived"
        assert not run["status"].get("restarts"), "a deleted child is restored, not counted as a rank failure"
        # Durable state: Redis reopens the same claim (its AOF) with the same password.
        assert (
            kube.get("v1", "PersistentVolumeClaim", runs.namespace, "durable-redis-data")["metadata"]["uid"]
            == (pvc["metadata"]["uid"])
        )
        assert kube.get("v1", "Secret", runs.namespace, "durable-redis-auth")["data"] == secret["data"]
        redis = kube.get("apps/v1", "Deployment", runs.namespace, "durable-redis")
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in redis["spec"]["template"]["spec"]["volumes"]
            if "persistentVolumeClaim" in v
        ]
        assert claims == ["durable-redis-data"]
        assert operator.metric("specforge_children_total", action="restored") >= 2
    except BaseException:
        print(operator.log_tail())
        raise
    finally:
        operator.stop()
        runs.delete("durable")


def test_two_replicas_only_one_acts_and_the_other_takes_over(
    cluster: PrivateCluster, runs: Runs, tmp_path: Path
) -> None:
    standby = start_operator(cluster, tmp_path, priority=100)
    active = start_operator(cluster, tmp_path, priority=200)
    try:
        wait_for_standby(standby)  # it has seen the active replica's peering record
        standby_before = standby.metric("specforge_reconciles_total")
        for index in range(5):
            runs.create(run_manifest("local_colocated", f"ha-{index}", suspend=True))
        wait_for(lambda: converged(runs, 5, "ha-"), "5 runs converged", timeout=60)
        assert active.metric("specforge_reconciles_total") > 0
        assert standby.metric("specforge_reconciles_total") == standby_before, "the standby replica acted too"

        active.kill()
        killed = time.monotonic()
        for index in range(5, 8):
            runs.create(run_manifest("local_colocated", f"ha-{index}", suspend=True))
        wait_for(lambda: converged(runs, 8, "ha-"), "the standby to take over", timeout=60)
        takeover = time.monotonic() - killed
        assert standby.metric("specforge_reconciles_total") > standby_before
        print(f"standby took over and converged 3 new runs {takeover:.1f} s after SIGKILL of the active one")
        assert takeover < 30
    except BaseException:
        print(active.log_tail(), standby.log_tail())
        raise
    finally:
        standby.stop()
        if active.process.poll() is None:
            active.stop()


# Last in the module: it restarts the control plane under every later test.
def test_kube_apiserver_restart_operator_reconnects_and_converges(
    cluster: PrivateCluster, runs: Runs, tmp_path: Path
) -> None:
    operator = start_operator(cluster, tmp_path)
    try:
        for index in range(3):
            runs.create(
                run_manifest("local_colocated", f"active-{index}", trainer={"podAnnotations": LONG_RUN})
            )
        for index in range(3):
            runs.wait_phase(f"active-{index}", "Running", timeout=60)

        cluster.restart_apiserver(down_seconds=5)
        with cluster.api_client() as api:
            after = Runs(api, runs.namespace)
            assert operator.process.poll() is None, "the operator died with the API server"
            after.create(
                run_manifest("local_colocated", "after-restart", trainer={"podAnnotations": LONG_RUN})
            )
            after.patch_spec("active-0", {"suspend": True})
            after.wait_phase("after-restart", "Running", timeout=90)
            after.wait_phase("active-0", "Suspended", timeout=60)
            assert after.get("active-1")["status"]["phase"] == "Running"
    except BaseException:
        print(operator.log_tail())
        raise
    finally:
        operator.stop()
