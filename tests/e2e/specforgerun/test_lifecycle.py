"""The operator on the real control plane: each example gets exactly its children, runs, succeeds and is
garbage-collected; failures, the store gate, idempotent reconciles and hand edits behave.

The operator runs as a real subprocess (``python -m specforge_operator``); KWOK plays the kubelet, so pods
go Running and then Succeeded (or Failed when annotated) without running any container.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from _support.operator_process import OperatorProcess
from e2e.conftest import GPU_RESOURCE, KWOK_FAIL_ANNOTATION, KWOK_RUN_DURATION_ANNOTATION, wait_for
from e2e.operator_harness import wait_for_resyncs
from e2e.specforgerun.conftest import EXAMPLES, Runs, condition, load_example
from kubernetes import client as k8s_client
from specforge_operator.kube import KubeApi

RUN_LABEL = "specforge.io/run"
CHILD_KINDS = [
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("batch/v1", "Job"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("kubeflow.org/v1", "PyTorchJob"),
]


def expected_children(run: dict[str, Any]) -> set[tuple[str, str]]:
    name, spec = run["metadata"]["name"], run["spec"]
    children = {
        ("ConfigMap", f"{name}-config"),
        ("ServiceAccount", f"{name}-trainer"),
        ("Role", f"{name}-progress"),
        ("RoleBinding", f"{name}-progress"),
    }
    mode = spec["deploymentMode"]
    if mode == "local_colocated":
        return children | {("Job", f"{name}-trainer")}
    children |= {("PyTorchJob", f"{name}-trainer")}
    for directory, suffix in (("featureStore", "features"), ("checkpoints", "checkpoints")):
        if not (spec.get(directory) or {}).get("volume"):  # unset: a claim the durable run owns
            children.add(("PersistentVolumeClaim", f"{name}-{suffix}"))
    managed = (spec.get("metadataStore") or {"managed": {}}).get("managed")
    if managed is not None:
        children |= {
            ("Deployment", f"{name}-redis"),
            ("Service", f"{name}-redis"),
            ("NetworkPolicy", f"{name}-redis"),
        }
        if (managed.get("auth") or {}).get("enabled", True):
            children.add(("Secret", f"{name}-redis-auth"))
        if (managed.get("persistence") or {}).get("enabled"):
            children.add(("PersistentVolumeClaim", f"{name}-redis-data"))
    if mode == "disaggregated":
        children.add(("Job", f"{name}-producers"))
    return children


def owned_children(
    kube: KubeApi, namespace: str, run: dict[str, Any]
) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for api_version, kind in CHILD_KINDS:
        for child in kube.list(api_version, kind, namespace, f"{RUN_LABEL}={run['metadata']['name']}"):
            found[(kind, child["metadata"]["name"])] = child
    return found


def with_pod_annotations(manifest: dict[str, Any], annotations: dict[str, str]) -> dict[str, Any]:
    manifest = copy.deepcopy(manifest)
    for pool in ("trainer", "producers"):
        if pool in manifest["spec"] or pool == "trainer":
            manifest["spec"].setdefault(pool, {})["podAnnotations"] = annotations
    return manifest


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_run_lifecycle(
    example: Path,
    kube_api: k8s_client.ApiClient,
    kube: KubeApi,
    runs: Runs,
    namespace: str,
    operator_process: OperatorProcess,
    tmp_path: Path,
) -> None:
    manifest = with_pod_annotations(load_example(example), {KWOK_RUN_DURATION_ANNOTATION: "6s"})
    name = manifest["metadata"]["name"]
    expected = expected_children(manifest)
    # The run's claims (Redis data, features, checkpoints) bind through the cluster's default StorageClass.
    try:
        created = runs.create(manifest)
        children = wait_for(
            lambda: (found := owned_children(kube, namespace, created)) and set(found) == expected and found,
            f"exactly the children {sorted(expected)}",
            timeout=60,
        )
        for child in children.values():
            (owner,) = child["metadata"]["ownerReferences"]
            assert (owner["kind"], owner["uid"], owner["controller"]) == (
                "SpecForgeRun",
                created["metadata"]["uid"],
                True,
            )
            assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "specforge-operator"
        _assert_gpu_requests(manifest, children)

        running = runs.wait_phase(name, "Running", timeout=60)
        assert condition(running, "Running")["status"] == "True"
        assert running["status"]["gpus"] == _total_gpus(manifest["spec"])
        done = runs.wait_phase(name, "Succeeded", timeout=90)
        assert done["status"]["completionTime"] >= done["status"]["startTime"]
        assert condition(done, "Succeeded")["status"] == "True"

        runs.delete(name)
        wait_for(
            lambda: not owned_children(kube, namespace, created),
            "garbage collection of every child",
            timeout=60,
        )
    except BaseException:
        print(operator_process.log_tail())
        raise


def _total_gpus(spec: dict[str, Any]) -> int:
    total = 0
    for pool in ("trainer", "producers"):
        if pool in spec:
            total += spec[pool].get("replicas", 1) * spec[pool].get(
                "gpusPerReplica", 0 if pool == "trainer" else 1
            )
    return total


def _assert_gpu_requests(manifest: dict[str, Any], children: dict[tuple[str, str], dict[str, Any]]) -> None:
    name, spec = manifest["metadata"]["name"], manifest["spec"]
    trainer_gpus = spec.get("trainer", {}).get("gpusPerReplica", 0)
    if spec["deploymentMode"] == "local_colocated":
        templates = [children[("Job", f"{name}-trainer")]["spec"]["template"]]
    else:
        job = children[("PyTorchJob", f"{name}-trainer")]
        replica_specs = job["spec"]["pytorchReplicaSpecs"]
        templates = [replica["template"] for replica in replica_specs.values()]
        assert sum(replica["replicas"] for replica in replica_specs.values()) == spec["trainer"].get(
            "replicas", 1
        )
        assert job["spec"]["nprocPerNode"] == str(max(trainer_gpus, 1))
    for template in templates:
        resources = template["spec"]["containers"][0]["resources"]
        assert int(resources.get("requests", {}).get(GPU_RESOURCE, 0)) == trainer_gpus
        assert int(resources.get("limits", {}).get(GPU_RESOURCE, 0)) == trainer_gpus
    if "producers" in spec:
        producers = children[("Job", f"{name}-producers")]["spec"]
        resources = producers["template"]["spec"]["containers"][0]["resources"]
        assert int(resources["limits"][GPU_RESOURCE]) == spec["producers"].get("gpusPerReplica", 1)
        assert producers["parallelism"] == producers["completions"] == spec["producers"].get("replicas", 1)


def _minimal(mode: str, name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "specforge.io/v1alpha1",
        "kind": "SpecForgeRun",
        "metadata": {"name": name},
        "spec": {
            "deploymentMode": mode,
            "targetModel": {"builtin": "tiny-llama"},
            "dataset": {"builtin": "chat-mini"},
            **spec,
        },
    }


@pytest.mark.parametrize("mode", ["local_colocated", "dataflow_colocated"])
def test_failing_pod_fails_the_run_with_its_reason(
    mode: str, runs: Runs, operator_process: OperatorProcess
) -> None:
    manifest = _minimal(
        mode,
        "failing",
        trainer={"podAnnotations": {KWOK_FAIL_ANNOTATION: "true", KWOK_RUN_DURATION_ANNOTATION: "1s"}},
        runPolicy={"backoffLimit": 0},
    )
    runs.create(manifest)
    failed = runs.wait_phase("failing", "Failed", timeout=90)
    reason = condition(failed, "Failed")
    assert reason["status"] == "True" and reason["reason"] not in ("", "NotInPhase")
    assert failed["status"]["completionTime"]
    if mode == "local_colocated":
        assert "exit code 1" in reason["message"], reason

    runs.warning_reasons("failing", reason["reason"])  # a Warning event with the reason; waits for it


def test_store_gate_holds_gpu_pods_until_redis_is_ready(
    kube: KubeApi, runs: Runs, operator_process: OperatorProcess
) -> None:
    # Redis asks for more CPU than any node has, so it cannot start; nothing with GPUs may be created.
    manifest = _minimal(
        "disaggregated",
        "gated",
        producers={"replicas": 1},
        featureStore={"volume": {"hostPath": {"path": "/tmp/features"}}},
        metadataStore={"managed": {"resources": {"cpu": "500", "memory": "256Mi"}}},
    )
    created = runs.create(manifest)
    provisioning = runs.wait_phase("gated", "Provisioning", timeout=30)
    store = condition(provisioning, "StoreReady")
    assert (store["status"], store["reason"]) == ("False", "WaitingForMetadataStore")
    wait_for_resyncs(operator_process, runs.namespace, "gated")  # the gate must hold, not just be slow
    kinds = {kind for kind, _ in owned_children(kube, runs.namespace, created)}
    assert "Deployment" in kinds and "PyTorchJob" not in kinds and "Job" not in kinds, kinds

    runs.patch_spec(
        "gated", {"metadataStore": {"managed": {"resources": {"cpu": "100m", "memory": "256Mi"}}}}
    )
    wait_for(
        lambda: {"PyTorchJob", "Job"} <= {kind for kind, _ in owned_children(kube, runs.namespace, created)},
        "the trainer and producers once Redis is ready",
    )
    ready = wait_for(
        lambda: condition(runs.get("gated"), "StoreReady")["status"] == "True", "StoreReady=True"
    )
    assert ready


def test_reconcile_is_idempotent_and_restores_hand_edits(
    kube: KubeApi, runs: Runs, operator_process: OperatorProcess
) -> None:
    manifest = _minimal(
        "local_colocated", "steady", trainer={"podAnnotations": {KWOK_RUN_DURATION_ANNOTATION: "300s"}}
    )
    created = runs.create(manifest)
    runs.wait_phase("steady", "Running", timeout=60)
    before = owned_children(kube, runs.namespace, created)
    run_version = runs.get("steady")["metadata"]["resourceVersion"]
    wait_for_resyncs(operator_process, runs.namespace, "steady")  # reconciles that changed nothing
    after = owned_children(kube, runs.namespace, created)
    assert {key: child["metadata"]["resourceVersion"] for key, child in after.items()} == {
        key: child["metadata"]["resourceVersion"] for key, child in before.items()
    }
    assert runs.get("steady")["metadata"]["resourceVersion"] == run_version, "a no-op reconcile wrote the run"

    config = before[("ConfigMap", "steady-config")]
    kube.delete("v1", "ConfigMap", runs.namespace, "steady-config")
    restored = wait_for(
        lambda: (
            (cm := kube.get("v1", "ConfigMap", runs.namespace, "steady-config"))
            and cm["metadata"]["uid"] != config["metadata"]["uid"]
            and cm
        ),
        "the deleted ConfigMap to be restored",
        timeout=30,
    )
    assert restored["data"] == config["data"]

    edited = {**config, "data": {"run.yaml": "tampered"}}
    edited["metadata"] = {k: v for k, v in config["metadata"].items() if k in ("name", "namespace")}
    kube._call(  # a hand edit under another field manager
        "PATCH",
        f"/api/v1/namespaces/{runs.namespace}/configmaps/steady-config",
        body={"data": {"run.yaml": "tampered"}},
        query=[("fieldManager", "kubectl-edit")],
        content_type="application/merge-patch+json",
    )
    wait_for(
        lambda: kube.get("v1", "ConfigMap", runs.namespace, "steady-config")["data"] == config["data"],
        "the edited ConfigMap to be restored",
        timeout=30,
    )


def test_suspend_and_resume(kube: KubeApi, runs: Runs, operator_process: OperatorProcess) -> None:
    manifest = _minimal(
        "local_colocated", "pausable", trainer={"podAnnotations": {KWOK_RUN_DURATION_ANNOTATION: "300s"}}
    )
    runs.create(manifest)
    runs.wait_phase("pausable", "Running", timeout=60)
    runs.patch_spec("pausable", {"suspend": True})
    runs.wait_phase("pausable", "Suspended", timeout=30)
    assert kube.get("batch/v1", "Job", runs.namespace, "pausable-trainer")["spec"]["suspend"] is True
    runs.patch_spec("pausable", {"suspend": False})
    runs.wait_phase("pausable", "Running", timeout=60)
