"""Smoke tests of the cluster the e2e layer runs against: each checks one behaviour the operator relies on.

Schema and CEL validation, pods running on KWOK nodes, scheduling against GPU capacity, training-operator
turning a PyTorchJob into pods that run and finish (or fail on request), garbage collection of owned
objects, and the version the API server reports.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import (
    GPU_RESOURCE,
    GPUS_PER_GPU_NODE,
    KWOK_FAIL_ANNOTATION,
    KWOK_NODE_SELECTOR,
    KWOK_RUN_DURATION_ANNOTATION,
    KWOK_TOLERATIONS,
    kwok_v1_tolerations,
    wait_for,
)
from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

KUBEFLOW_GROUP, KUBEFLOW_VERSION = "kubeflow.org", "v1"


def test_api_server_reports_the_pinned_version(
    kube_api: k8s_client.ApiClient, local_control_plane: bool
) -> None:
    if not local_control_plane:
        pytest.skip("the pinned version is only ours to check on the local control plane")
    pins = dict(
        line.split("=", 1)
        for line in (Path(__file__).resolve().parents[2] / "hack/versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    info = k8s_client.VersionApi(kube_api).get_code()
    assert info.git_version == pins["KUBERNETES_VERSION"]
    assert info.git_tree_state == "clean"


def test_crd_cel_rule_rejects_a_bad_object(kube_api: k8s_client.ApiClient, namespace: str) -> None:
    extensions = k8s_client.ApiextensionsV1Api(kube_api)
    group, plural = "smoke.specforge.io", f"ranges{uuid.uuid4().hex[:6]}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": "Range" + plural[6:].upper()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"low": {"type": "integer"}, "high": {"type": "integer"}},
                                    "x-kubernetes-validations": [
                                        {
                                            "rule": "self.low <= self.high",
                                            "message": "low must not exceed high",
                                        }
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    extensions.create_custom_resource_definition(crd)
    try:
        wait_for(
            lambda: any(
                c.type == "Established" and c.status == "True"
                for c in extensions.read_custom_resource_definition(crd["metadata"]["name"]).status.conditions
                or []
            ),
            "the CRD to be established",
        )
        objects = k8s_client.CustomObjectsApi(kube_api)
        kind = crd["spec"]["names"]["kind"]

        def create(name: str, low: int, high: int) -> dict[str, Any]:
            body = {
                "apiVersion": f"{group}/v1",
                "kind": kind,
                "metadata": {"name": name},
                "spec": {"low": low, "high": high},
            }
            return objects.create_namespaced_custom_object(group, "v1", namespace, plural, body)

        assert create("good", 1, 2)["spec"] == {"low": 1, "high": 2}
        with pytest.raises(ApiException) as rejected:
            create("bad", 3, 2)
        assert rejected.value.status == 422
        assert "low must not exceed high" in rejected.value.body
    finally:
        extensions.delete_custom_resource_definition(crd["metadata"]["name"])


def test_deployment_pods_run_on_kwok_nodes(kube_api: k8s_client.ApiClient, namespace: str) -> None:
    apps, core = k8s_client.AppsV1Api(kube_api), k8s_client.CoreV1Api(kube_api)
    labels = {"app": "smoke"}
    container = k8s_client.V1Container(name="app", image="registry.invalid/smoke:1")
    apps.create_namespaced_deployment(
        namespace,
        k8s_client.V1Deployment(
            metadata=k8s_client.V1ObjectMeta(name="smoke"),
            spec=k8s_client.V1DeploymentSpec(
                replicas=2,
                selector=k8s_client.V1LabelSelector(match_labels=labels),
                template=k8s_client.V1PodTemplateSpec(
                    metadata=k8s_client.V1ObjectMeta(labels=labels),
                    spec=k8s_client.V1PodSpec(
                        containers=[container],
                        tolerations=kwok_v1_tolerations(),
                        node_selector=KWOK_NODE_SELECTOR,
                    ),
                ),
            ),
        ),
    )
    wait_for(
        lambda: (
            (apps.read_namespaced_deployment_status("smoke", namespace).status.available_replicas or 0) == 2
        ),
        "the Deployment to have 2 available replicas",
    )
    pods = core.list_namespaced_pod(namespace, label_selector="app=smoke").items
    fake_nodes = {n.metadata.name for n in core.list_node(label_selector="type=kwok").items}
    assert len(pods) == 2
    assert all(p.status.phase == "Running" and p.spec.node_name in fake_nodes for p in pods)


def gpu_pod(name: str, gpus: int) -> k8s_client.V1Pod:
    resources = k8s_client.V1ResourceRequirements(limits={GPU_RESOURCE: str(gpus)})
    container = k8s_client.V1Container(name="main", image="registry.invalid/gpu:1", resources=resources)
    return k8s_client.V1Pod(
        metadata=k8s_client.V1ObjectMeta(name=name),
        spec=k8s_client.V1PodSpec(
            containers=[container], tolerations=kwok_v1_tolerations(), node_selector=KWOK_NODE_SELECTOR
        ),
    )


def test_scheduler_places_pods_by_gpu_capacity(kube_api: k8s_client.ApiClient, namespace: str) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, gpu_pod("fits", GPUS_PER_GPU_NODE))
    core.create_namespaced_pod(namespace, gpu_pod("too-big", GPUS_PER_GPU_NODE + 1))

    def unschedulable_message() -> str | None:
        conditions = core.read_namespaced_pod_status("too-big", namespace).status.conditions or []
        return next(
            (c.message for c in conditions if c.type == "PodScheduled" and c.reason == "Unschedulable"), None
        )

    assert f"Insufficient {GPU_RESOURCE}" in wait_for(
        unschedulable_message, "the oversized pod to be Unschedulable"
    )
    fits = wait_for(
        lambda: (p := core.read_namespaced_pod("fits", namespace)).status.phase == "Running" and p,
        "the 8-GPU pod to run",
    )
    node = core.read_node(fits.spec.node_name)
    assert node.status.allocatable.get(GPU_RESOURCE) == str(GPUS_PER_GPU_NODE)


def pytorchjob(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    def replica(count: int) -> dict[str, Any]:
        container = {
            "name": "pytorch",
            "image": "registry.invalid/trainer:1",
            "resources": {"limits": {GPU_RESOURCE: "4"}},
        }
        return {
            "replicas": count,
            "restartPolicy": "Never",
            "template": {
                "metadata": {"annotations": annotations},
                "spec": {
                    "containers": [container],
                    "tolerations": KWOK_TOLERATIONS,
                    "nodeSelector": KWOK_NODE_SELECTOR,
                },
            },
        }

    return {
        "apiVersion": f"{KUBEFLOW_GROUP}/{KUBEFLOW_VERSION}",
        "kind": "PyTorchJob",
        "metadata": {"name": name},
        "spec": {"pytorchReplicaSpecs": {"Master": replica(1), "Worker": replica(2)}},
    }


def run_pytorchjob(
    kube_api: k8s_client.ApiClient, namespace: str, annotations: dict[str, str]
) -> tuple[str, dict[str, list[str]]]:
    """Create a Master + 2 Workers PyTorchJob; return its final condition and each pod's phases in order."""
    objects, core = k8s_client.CustomObjectsApi(kube_api), k8s_client.CoreV1Api(kube_api)
    objects.create_namespaced_custom_object(
        KUBEFLOW_GROUP, KUBEFLOW_VERSION, namespace, "pytorchjobs", pytorchjob("smoke", annotations)
    )
    phases: dict[str, list[str]] = {}
    finished = {"Succeeded", "Failed"}
    stream = k8s_watch.Watch()
    for event in stream.stream(core.list_namespaced_pod, namespace, timeout_seconds=90):
        pod = event["object"]
        seen = phases.setdefault(pod.metadata.name, [])
        if not seen or seen[-1] != pod.status.phase:
            seen.append(pod.status.phase)
        if len(phases) == 3 and all(p[-1] in finished for p in phases.values()):
            stream.stop()

    def final_condition() -> str | None:
        job = objects.get_namespaced_custom_object(
            KUBEFLOW_GROUP, KUBEFLOW_VERSION, namespace, "pytorchjobs", "smoke"
        )
        conditions = job.get("status", {}).get("conditions", [])
        return next((c["type"] for c in conditions if c["type"] in finished and c["status"] == "True"), None)

    return wait_for(final_condition, "the PyTorchJob to finish"), phases


def test_pytorchjob_pods_run_then_succeed(kube_api: k8s_client.ApiClient, namespace: str) -> None:
    outcome, phases = run_pytorchjob(kube_api, namespace, {KWOK_RUN_DURATION_ANNOTATION: "4s"})
    assert sorted(phases) == ["smoke-master-0", "smoke-worker-0", "smoke-worker-1"]
    for name, seen in phases.items():
        assert "Running" in seen and seen[-1] == "Succeeded", f"{name} went through {seen}"
    assert outcome == "Succeeded"


def test_pytorchjob_fails_when_its_pods_carry_the_failure_annotation(
    kube_api: k8s_client.ApiClient, namespace: str
) -> None:
    outcome, phases = run_pytorchjob(kube_api, namespace, {KWOK_FAIL_ANNOTATION: "true"})
    assert phases["smoke-master-0"][-1] == "Failed"
    assert outcome == "Failed"


def test_deleting_an_owner_garbage_collects_what_it_owns(
    kube_api: k8s_client.ApiClient, namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, k8s_client.V1ConfigMap(metadata=k8s_client.V1ObjectMeta(name="owner"))
    )
    reference = k8s_client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        k8s_client.V1ConfigMap(metadata=k8s_client.V1ObjectMeta(name="owned", owner_references=[reference])),
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")

    def owned_is_gone() -> bool:
        try:
            core.read_namespaced_config_map("owned", namespace)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    wait_for(owned_is_gone, "the garbage collector to delete the owned ConfigMap")
