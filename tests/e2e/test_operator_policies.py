"""Run policies on a real control plane: unschedulable runs explain themselves, deadlines, gang restarts
against the backoff limit, suspend/resume, queue admission (Kueue's protocol) and TTL. The durable-mode
policies run once per trainer backend (PyTorchJob, JobSet), whose controllers both run in the cluster.

A private cluster (operator_harness) with one standalone operator replica; KWOK plays the kubelet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from _support.operator_process import OperatorProcess
from e2e.backends import BACKENDS, Backend
from e2e.conftest import (
    GPU_RESOURCE,
    KWOK_FAIL_ANNOTATION,
    KWOK_RUN_DURATION_ANNOTATION,
    LONG_RUN,
    kwok_only_clusters,
)
from e2e.operator_harness import (
    PrivateCluster,
    delete_namespace,
    new_namespace,
    private_cluster,
    start_operator,
    wait_for_resyncs,
)
from e2e.specforgerun.conftest import GROUP, PLURAL, VERSION, Runs, condition, wait_for
from kubernetes import client as k8s_client
from specforge_operator.kube import KubeApi
from specforge_operator.render.meta import FIELD_MANAGER
from unit.operator.builders import run_manifest


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with kwok_only_clusters(), private_cluster("ops-policies") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def operator(cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = start_operator(cluster, tmp_path_factory.mktemp("operator"))
    yield process
    process.stop()


@pytest.fixture
def api(cluster: PrivateCluster) -> Iterator[k8s_client.ApiClient]:
    with cluster.api_client() as api:
        yield api


@pytest.fixture
def runs(api: k8s_client.ApiClient, operator: OperatorProcess) -> Iterator[Runs]:
    namespace = new_namespace(api)
    try:
        yield Runs(api, namespace)
    except BaseException:
        print(operator.log_tail())
        raise
    finally:
        delete_namespace(api, namespace)


def test_unschedulable_run_says_why_and_clears_when_capacity_arrives(
    api: k8s_client.ApiClient, runs: Runs
) -> None:
    # 16 GPUs in one pod: no node has them until a bigger node joins.
    runs.create(
        run_manifest("local_colocated", "big", trainer={"gpusPerReplica": 16, "podAnnotations": LONG_RUN})
    )
    stuck = wait_for(
        lambda: (c := condition(runs.get("big"), "Schedulable")) and c["status"] == "False" and c,
        "Schedulable=False",
        timeout=60,
    )
    assert stuck["reason"] == "Unschedulable"
    assert f"Insufficient {GPU_RESOURCE}" in stuck["message"], stuck
    assert runs.get("big")["status"]["phase"] == "Pending"
    assert "Unschedulable" in runs.warning_reasons("big", "Unschedulable")

    node = f"big-gpu-{runs.namespace}"
    core = k8s_client.CoreV1Api(api)
    capacity = {"cpu": "96", "memory": "1024Gi", "pods": "110", GPU_RESOURCE: "16"}
    core.create_node(
        {
            "metadata": {
                "name": node,
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": node},
            },
            # allocatable and Ready from the start: the node's add event alone lets the scheduler retry
            # the pod, instead of depending on which later node update its queueing hints act on
            "status": {
                "capacity": capacity,
                "allocatable": capacity,
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kwok"}
                ],
            },
        }
    )
    try:
        cleared = wait_for(
            lambda: (c := condition(runs.get("big"), "Schedulable")) and c["status"] == "True" and c,
            "Schedulable=True once a 16-GPU node exists",
            timeout=90,
        )
        assert cleared["reason"] == "PodsScheduled"
        runs.wait_phase("big", "Running", timeout=60)
    except BaseException:  # what the scheduler and the operator saw, shown with the failure
        for pod in core.list_namespaced_pod(runs.namespace).items:
            print("pod", pod.metadata.name, pod.spec.node_name, pod.status.phase, pod.status.conditions)
        big = core.read_node(node)
        print("node", big.status.conditions, big.status.allocatable, big.spec.taints)
        print("run status", runs.get("big")["status"])
        raise
    finally:
        core.delete_node(node)


def test_pre_running_deadline_fails_with_the_schedulers_reason(runs: Runs) -> None:
    runs.create(
        run_manifest(
            "local_colocated",
            "never",
            trainer={"gpusPerReplica": 16},
            runPolicy={"preRunningDeadlineSeconds": 5},
        )
    )
    failed = runs.wait_phase("never", "Failed", timeout=60)
    reason = condition(failed, "Failed")
    assert reason["reason"] == "PreRunningDeadlineExceeded"
    assert f"Insufficient {GPU_RESOURCE}" in reason["message"], reason
    kube = KubeApi(runs.api.api_client)
    wait_for(lambda: kube.get("batch/v1", "Job", runs.namespace, "never-trainer") is None, "the Job deleted")


def test_active_deadline_stops_a_running_run(runs: Runs) -> None:
    runs.create(
        run_manifest(
            "local_colocated",
            "bounded",
            trainer={"podAnnotations": LONG_RUN},
            runPolicy={"activeDeadlineSeconds": 6},
        )
    )
    runs.wait_phase("bounded", "Running", timeout=60)
    failed = runs.wait_phase("bounded", "Failed", timeout=60)
    assert condition(failed, "Failed")["reason"] == "DeadlineExceeded"
    kube = KubeApi(runs.api.api_client)
    wait_for(
        lambda: kube.get("batch/v1", "Job", runs.namespace, "bounded-trainer") is None, "the Job deleted"
    )


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
def test_a_failed_rank_restarts_every_rank_until_the_backoff_limit(
    runs: Runs, operator: OperatorProcess, backend: Backend
) -> None:
    restored_before = operator.metric("specforge_children_total", kind=backend.kind, action="restored")
    failing = {KWOK_FAIL_ANNOTATION: "true", KWOK_RUN_DURATION_ANNOTATION: "2s"}
    runs.create(
        run_manifest(
            "dataflow_colocated",
            "flaky",
            trainer={"replicas": 3, "podAnnotations": failing, "backend": backend.name},
            runPolicy={"backoffLimit": 2},
        )
    )
    kube = KubeApi(runs.api.api_client)
    seen_generations: set[str] = (
        set()
    )  # owners of trainer pods: the workload (PyTorchJob) or its Job (JobSet)
    restarting_seen = False

    def finished() -> dict[str, Any] | None:
        nonlocal restarting_seen
        pods = kube.list(
            "v1", "Pod", runs.namespace, "specforge.io/run=flaky,app.kubernetes.io/component=trainer"
        )
        owners = {ref["uid"] for pod in pods for ref in pod["metadata"].get("ownerReferences", [])}
        # Gang restart: ranks of two generations of the workload never coexist.
        assert len(owners) <= 1, f"pods of several {backend.kind} generations at once: {owners}"
        seen_generations.update(owners)
        run = runs.get("flaky")
        phase = (run.get("status") or {}).get("phase")
        restarting_seen = restarting_seen or phase == "Restarting"
        return run if phase == "Failed" else None

    failed = wait_for(finished, "the run to fail after its restarts", timeout=180, interval=0.5)
    reason = condition(failed, "Failed")
    assert reason["reason"] == "BackoffLimitExceeded", reason
    assert failed["status"]["restarts"] == 2
    assert "after 2 restarts" in reason["message"]
    assert len(seen_generations) == 3, "one generation of ranks per attempt (the first plus two restarts)"
    assert restarting_seen, "the run reported Restarting between attempts"
    assert failed["status"]["trainerBackend"] == backend.name
    assert runs.warning_reasons("flaky", "BackoffLimitExceeded").count("BackoffLimitExceeded") == 1
    restored = operator.metric("specforge_children_total", kind=backend.kind, action="restored")
    assert restored - restored_before == (2 if backend.replaced_on_restart else 0)


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
def test_suspend_stops_pods_keeps_the_store_and_resumes(
    runs: Runs, operator: OperatorProcess, backend: Backend
) -> None:
    trainer = {"replicas": 2, "podAnnotations": LONG_RUN, "backend": backend.name}
    runs.create(run_manifest("dataflow_colocated", "pausable", trainer=trainer))
    runs.wait_phase("pausable", "Running", timeout=90)
    kube = KubeApi(runs.api.api_client)
    redis = kube.get("apps/v1", "Deployment", runs.namespace, "pausable-redis")
    secret = kube.get("v1", "Secret", runs.namespace, "pausable-redis-auth")
    progress = {"step": 40, "totalSteps": 100, "loss": 2.5}
    runs.api.patch_namespaced_custom_object_status(
        "specforge.io",
        "v1alpha1",
        runs.namespace,
        "specforgeruns",
        "pausable",
        {"status": {"progress": progress}},
    )

    runs.patch_spec("pausable", {"suspend": True})
    suspended = runs.wait_phase("pausable", "Suspended", timeout=30)
    assert condition(suspended, "Suspended")["status"] == "True"
    assert backend.suspended(backend.workload(kube, runs.namespace, "pausable"))
    wait_for(
        lambda: (
            not kube.list(
                "v1", "Pod", runs.namespace, "specforge.io/run=pausable,app.kubernetes.io/component=trainer"
            )
        ),
        "the trainer pods to be removed",
    )
    for kept, (api_version, kind, name) in (
        (redis, ("apps/v1", "Deployment", "pausable-redis")),
        (secret, ("v1", "Secret", "pausable-redis-auth")),
    ):
        assert kube.get(api_version, kind, runs.namespace, name)["metadata"]["uid"] == kept["metadata"]["uid"]
    assert operator.metric("specforge_runs", phase="Suspended", mode="dataflow_colocated") >= 1

    runs.patch_spec("pausable", {"suspend": False})
    resumed = runs.wait_phase("pausable", "Running", timeout=60)
    assert resumed["status"]["progress"]["step"] == 40, "progress written by the trainer survives suspend"
    assert kube.get("v1", "Secret", runs.namespace, "pausable-redis-auth")["data"] == secret["data"]


@pytest.mark.parametrize("backend", BACKENDS, ids=str)
def test_queue_label_and_suspended_creation_let_a_queue_admit_the_run(
    runs: Runs, operator: OperatorProcess, backend: Backend
) -> None:
    runs.create(
        run_manifest(
            "dataflow_colocated",
            "queued",
            trainer={"podAnnotations": LONG_RUN, "backend": backend.name},
            scheduling={"queueName": "team-a"},
        )
    )
    kube = KubeApi(runs.api.api_client)
    job = wait_for(lambda: backend.workload(kube, runs.namespace, "queued"), f"the {backend.kind}")
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert backend.suspended(job), "created suspended, for the queue to admit"
    pending = runs.wait_phase("queued", "Pending", timeout=30)
    admitted = condition(pending, "QueueAdmitted")
    assert (admitted["status"], admitted["reason"]) == ("False", "WaitingForQueueAdmission"), admitted
    assert "team-a" in admitted["message"]
    wait_for(
        lambda: any(
            event.reason == "WaitingForQueueAdmission" and "team-a" in event.message
            for event in k8s_client.CoreV1Api(runs.api.api_client)
            .list_namespaced_event(runs.namespace, field_selector="involvedObject.name=queued")
            .items
        ),
        "an event naming the queue the run waits for",
    )
    wait_for_resyncs(operator, runs.namespace, "queued")  # the operator must not start it on its own
    assert backend.suspended(backend.workload(kube, runs.namespace, "queued"))

    backend.admit(kube, runs.namespace, "queued")
    running = runs.wait_phase("queued", "Running", timeout=60)
    assert condition(running, "QueueAdmitted")["status"] == "True"
    wait_for_resyncs(operator, runs.namespace, "queued")
    job = backend.workload(kube, runs.namespace, "queued")
    assert not backend.suspended(job), "the operator undid the queue's admission"


def test_ttl_deletes_a_finished_run_and_its_children(runs: Runs) -> None:
    created = runs.create(
        run_manifest(
            "local_colocated",
            "short",
            trainer={"podAnnotations": {KWOK_RUN_DURATION_ANNOTATION: "1s"}},
            runPolicy={"ttlSecondsAfterFinished": 3},
        )
    )
    runs.wait_phase("short", "Succeeded", timeout=60)
    finished_at = time.monotonic()
    custom = runs.api

    def gone() -> bool:
        return not any(
            item["metadata"]["uid"] == created["metadata"]["uid"]
            for item in custom.list_namespaced_custom_object(
                "specforge.io", "v1alpha1", runs.namespace, "specforgeruns"
            )["items"]
        )

    wait_for(gone, "the run deleted after its TTL", timeout=30)
    assert time.monotonic() - finished_at >= 2, "deleted before its TTL"
    kube = KubeApi(custom.api_client)
    wait_for(
        lambda: not kube.list("v1", "ConfigMap", runs.namespace, "specforge.io/run=short"),
        "the children garbage-collected",
    )


def test_metrics_report_reconciles_latency_and_phases(operator: OperatorProcess) -> None:
    assert operator.metric("specforge_reconciles_total", result="changed") > 0
    assert operator.metric("specforge_reconcile_duration_seconds_count") > 0
    assert operator.metric("specforge_children_total", action="created") > 0


def test_a_child_the_api_server_refuses_is_named_on_the_run_then_created_once_allowed(
    api: k8s_client.ApiClient, runs: Runs, operator: OperatorProcess
) -> None:
    # A quota of no Jobs in the namespace: the run's trainer Job is refused (403) on its first apply.
    core = k8s_client.CoreV1Api(api)
    quota = k8s_client.V1ResourceQuota(
        metadata=k8s_client.V1ObjectMeta(name="no-jobs"),
        spec=k8s_client.V1ResourceQuotaSpec(hard={"count/jobs.batch": "0"}),
    )
    core.create_namespaced_resource_quota(runs.namespace, quota)
    wait_for(
        lambda: core.read_namespaced_resource_quota("no-jobs", runs.namespace).status.hard or None,
        "the quota to be counted",
        timeout=30,
    )
    runs.create(run_manifest("local_colocated", "refused", trainer={"podAnnotations": LONG_RUN}))
    refused = wait_for(
        lambda: (c := condition(runs.get("refused"), "ChildrenAccepted")) and c["status"] == "False" and c,
        "ChildrenAccepted=False",
        timeout=60,
    )
    assert refused["reason"] == "ChildRejected"
    assert "Job refused-trainer" in refused["message"] and "exceeded quota" in refused["message"], refused
    status = runs.get("refused")["status"]
    assert (status["phase"], condition(runs.get("refused"), "Running")["status"]) == ("Provisioning", "False")
    runs.warning_reasons("refused", "ChildRejected")
    wait_for_resyncs(operator, runs.namespace, "refused")  # refused again at each: still one event
    assert runs.warning_reasons("refused", "ChildRejected").count("ChildRejected") == 1

    core.delete_namespaced_resource_quota("no-jobs", runs.namespace)
    runs.wait_phase("refused", "Running", timeout=60)  # the next resync creates it
    assert condition(runs.get("refused"), "ChildrenAccepted")["status"] == "True"


def test_an_object_of_a_childs_name_the_run_does_not_own_is_left_alone_and_reported(
    api: k8s_client.ApiClient, runs: Runs, operator: OperatorProcess
) -> None:
    apps = k8s_client.AppsV1Api(api)
    selector = {"app": "someone-elses"}
    theirs = k8s_client.V1Deployment(
        metadata=k8s_client.V1ObjectMeta(name="taken-redis", labels=selector),
        spec=k8s_client.V1DeploymentSpec(
            replicas=0,
            selector=k8s_client.V1LabelSelector(match_labels=selector),
            template=k8s_client.V1PodTemplateSpec(
                metadata=k8s_client.V1ObjectMeta(labels=selector),
                spec=k8s_client.V1PodSpec(
                    containers=[k8s_client.V1Container(name="app", image="example/app:1")]
                ),
            ),
        ),
    )
    before = apps.create_namespaced_deployment(runs.namespace, theirs)
    runs.create(run_manifest("dataflow_colocated", "taken"))
    reported = wait_for(
        lambda: (c := condition(runs.get("taken"), "ChildrenAccepted")) and c["status"] == "False" and c,
        "ChildrenAccepted=False",
        timeout=60,
    )
    assert "Deployment taken-redis already exists and this run does not own it" in reported["message"]
    runs.warning_reasons("taken", "ChildRejected")
    wait_for_resyncs(operator, runs.namespace, "taken")
    after = apps.read_namespaced_deployment("taken-redis", runs.namespace)
    # The deployment controller writes its status; the operator writes nothing at all.
    assert _untouched(after, before)

    runs.delete("taken")
    custom = k8s_client.CustomObjectsApi(api)
    wait_for(
        lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, runs.namespace, PLURAL)["items"],
        "the run to be gone",
        timeout=60,
    )
    time.sleep(3)  # the garbage collector would delete an owned object right after its owner
    assert _untouched(apps.read_namespaced_deployment("taken-redis", runs.namespace), before)


def _untouched(now: k8s_client.V1Deployment, before: k8s_client.V1Deployment) -> bool:
    managers = {entry.manager for entry in now.metadata.managed_fields or []}
    return (
        now.metadata.generation == before.metadata.generation
        and now.metadata.labels == before.metadata.labels
        and not now.metadata.owner_references
        and FIELD_MANAGER not in managers
    )


def test_a_trainer_resetting_the_restart_count_does_not_buy_more_restarts(
    api: k8s_client.ApiClient, runs: Runs, operator: OperatorProcess, cluster: PrivateCluster
) -> None:
    failing = {KWOK_FAIL_ANNOTATION: "true", KWOK_RUN_DURATION_ANNOTATION: "8s"}
    runs.create(
        run_manifest(
            "dataflow_colocated", "forged", trainer={"podAnnotations": failing}, runPolicy={"backoffLimit": 2}
        )
    )
    kube = KubeApi(runs.api.api_client)
    generations: set[str] = set()

    def restarts() -> int:
        pods = kube.list(
            "v1", "Pod", runs.namespace, "specforge.io/run=forged,app.kubernetes.io/component=trainer"
        )
        generations.update(ref["uid"] for pod in pods for ref in pod["metadata"].get("ownerReferences", []))
        return (runs.get("forged").get("status") or {}).get("restarts", 0)

    wait_for(lambda: restarts() >= 1, "the first restart", timeout=120, interval=0.5)
    # What the trainer's ServiceAccount may do: patch its run's status, here its restart count back to 0;
    # then a new operator process, which has no memory of the count.
    with cluster.api_client() as as_trainer:
        as_trainer.set_default_header(
            "Impersonate-User", f"system:serviceaccount:{runs.namespace}:forged-trainer"
        )
        k8s_client.CustomObjectsApi(as_trainer).patch_namespaced_custom_object_status(
            GROUP, VERSION, runs.namespace, PLURAL, "forged", {"status": {"restarts": 0}}
        )
    assert runs.get("forged")["status"]["restarts"] == 0
    operator.restart()

    def failed() -> dict[str, Any] | None:
        restarts()
        run = runs.get("forged")
        return run if (run.get("status") or {}).get("phase") == "Failed" else None

    run = wait_for(failed, "the run to fail at its backoff limit", timeout=240, interval=0.5)
    assert condition(run, "Failed")["reason"] == "BackoffLimitExceeded"
    assert run["status"]["restarts"] == 2
    assert len(generations) == 3, "the first attempt and two restarts, not a third bought by the reset"
