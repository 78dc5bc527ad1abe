"""The children plan: the store gate, finished runs, the prune allow-list and the store connection."""

from __future__ import annotations

import pytest
from specforge_operator.plan import plan_children
from unit.operator.builders import build_run


def kinds(manifests: list[dict]) -> list[str]:
    return [manifest["kind"] for manifest in manifests]


@pytest.mark.parametrize("mode", ["dataflow_colocated", "disaggregated"])
def test_managed_store_gates_the_gpu_workloads(mode: str) -> None:
    run = build_run(mode)
    plan = plan_children(run, finished=False)
    assert "PyTorchJob" not in kinds(plan.to_apply) and "Job" not in kinds(plan.to_apply)
    assert "Deployment" in kinds(plan.to_apply)
    assert "PyTorchJob" in kinds(plan.gated)
    assert kinds(plan.rendered)[-len(plan.gated) :] == kinds(plan.gated)
    redis = next(m for m in plan.to_apply if m["kind"] == "Deployment")
    assert not plan.store_ready({}), "no store Deployment yet"
    assert not plan.store_ready({plan.store_deployment: redis})
    ready = {**redis, "status": {"readyReplicas": 1}}
    assert plan.store_ready({plan.store_deployment: ready})


def test_external_store_is_not_gated_and_has_no_redis() -> None:
    run = build_run(
        "dataflow_colocated",
        metadataStore={
            "external": {"url": "rediss://r.example:6380/2", "passwordSecretRef": {"name": "r", "key": "pw"}}
        },
    )
    plan = plan_children(run, finished=False)
    assert "PyTorchJob" in kinds(plan.to_apply) and "Deployment" not in kinds(plan.to_apply)
    assert plan.gated == [] and plan.store_ready({}), "nothing waits for an external store"
    assert plan.auth_secret is None
    assert plan.store is not None and plan.store.url == "rediss://r.example:6380/2"
    assert plan.store.password_secret is not None and plan.store.password_secret.key == "pw"


def test_finished_run_gets_no_workload_but_may_keep_it() -> None:
    plan = plan_children(build_run("local_colocated"), finished=True)
    assert "Job" not in kinds(plan.rendered)
    assert ("batch/v1", "Job", "demo-trainer") in plan.allowed


def test_allow_list_follows_the_spec() -> None:
    with_pvc = plan_children(
        build_run("dataflow_colocated", metadataStore={"managed": {"persistence": {"enabled": True}}}),
        finished=False,
    )
    without = plan_children(build_run("dataflow_colocated"), finished=False)
    pvc = ("v1", "PersistentVolumeClaim", "demo-redis-data")
    assert pvc in with_pvc.allowed and pvc not in without.allowed
    assert ("v1", "Secret", "demo-redis-auth") in without.allowed


def test_no_auth_means_no_password_anywhere() -> None:
    run = build_run("dataflow_colocated", metadataStore={"managed": {"auth": {"enabled": False}}})
    plan = plan_children(run, finished=False)
    assert plan.auth_secret is None
    rendered = str(plan.rendered)
    assert "SPECFORGE_METADATA_PASSWORD" not in rendered and "requirepass" not in rendered


def test_children_need_the_run_uid() -> None:
    run = build_run()
    run.metadata.uid = None
    with pytest.raises(ValueError, match="has no uid"):
        plan_children(run, finished=False)


def test_the_managed_store_is_placed_where_the_trainers_may_run() -> None:
    toleration = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    run = build_run(
        "dataflow_colocated", trainer={"nodeSelector": {"pool": "gpu"}, "tolerations": [toleration]}
    )
    plan = plan_children(run, finished=False)
    (redis,) = [m for m in plan.to_apply if m["kind"] == "Deployment"]
    pod = redis["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [toleration]


def test_storage_classes_and_the_scheduler_reach_the_rendered_objects() -> None:
    """What the user names in the spec is what the API server gets, under the field it reads."""
    run = build_run(
        "dataflow_colocated",
        featureStore={
            "claim": {"size": "5Gi", "storageClassName": "fast-rwx", "accessModes": ["ReadWriteMany"]}
        },
        checkpoints={"path": "/ckpt"},
        metadataStore={"managed": {"persistence": {"enabled": True, "storageClassName": "ssd"}}},
        scheduling={"schedulerName": "volcano"},
    )
    plan = plan_children(run, finished=False)
    manifests = plan.rendered
    claims = {m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "PersistentVolumeClaim"}
    features = next(spec for name, spec in claims.items() if name.endswith("features"))
    assert features == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "5Gi"}},
        "storageClassName": "fast-rwx",
    }
    checkpoints = next(spec for name, spec in claims.items() if name.endswith("checkpoints"))
    assert "storageClassName" not in checkpoints  # unset: the cluster's default class
    assert any(spec.get("storageClassName") == "ssd" for spec in claims.values())  # the Redis AOF claim
    workload = next(m for m in manifests if m["kind"] == "PyTorchJob")
    for replica in workload["spec"]["pytorchReplicaSpecs"].values():
        pod = replica["template"]["spec"]
        assert pod["schedulerName"] == "volcano"
        mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        assert mounts["checkpoints"] == "/ckpt"
