"""The JobSet backend: what it renders, how its status reads back, and how a run's backend is chosen."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from specforge_api.manifest import ManifestError
from specforge_api.pod_contract import CONFIG_FILE, Env, expand_references, workload_env
from specforge_api.run import MAX_RUN_NAME_LENGTH
from specforge_api.spec import TrainerBackend
from specforge_api.status import SpecForgeRunStatus
from specforge_operator.plan import plan_children
from specforge_operator.render.store import store_connection
from specforge_operator.workloads import backend_of, cluster_default_backend, workload_for
from specforge_operator.workloads.base import WorkloadState
from specforge_operator.workloads.jobset import JobSetWorkload, master_address
from specforge_trainer.local.launch import trainer_specs
from unit.operator.builders import build_run

JOBSET = TrainerBackend.JOBSET
LOCAL_CLI = [sys.executable, "-m", "specforge_trainer.cli"]
RENDEZVOUS = {Env.RANK, Env.WORLD_SIZE, Env.MASTER_ADDR, Env.MASTER_PORT}


def render(**spec: Any) -> dict[str, Any]:
    run = build_run("dataflow_colocated", name="demo", **spec)
    return JobSetWorkload().render(run, store_connection(run))


def job_spec(jobset: dict[str, Any]) -> dict[str, Any]:
    (replicated,) = jobset["spec"]["replicatedJobs"]
    assert replicated["replicas"] == 1, "one Indexed Job holds every trainer pod"
    return replicated["template"]["spec"]


def container(jobset: dict[str, Any]) -> dict[str, Any]:
    (only,) = job_spec(jobset)["template"]["spec"]["containers"]
    return only


def test_one_indexed_job_of_trainer_pods_that_fails_as_a_whole() -> None:
    jobset = render(trainer={"replicas": 3})
    job = job_spec(jobset)
    assert (job["parallelism"], job["completions"], job["completionMode"]) == (3, 3, "Indexed")
    assert job["backoffLimit"] == 0, "a rank never restarts alone"
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert job["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "trainer"


def test_gang_restarts_follow_the_backoff_limit_and_never_overlap_attempts() -> None:
    policy = render(runPolicy={"backoffLimit": 5})["spec"]["failurePolicy"]
    assert policy == {"maxRestarts": 5, "restartStrategy": "BlockingRecreate"}


def test_owned_by_the_run_and_queued_through_the_kueue_label() -> None:
    jobset = render(scheduling={"queueName": "team-a"}, suspend=True)
    (owner,) = jobset["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("SpecForgeRun", "demo", True)
    assert jobset["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert jobset["spec"]["suspend"] is True
    assert "kueue.x-k8s.io/queue-name" not in render()["metadata"]["labels"]


def test_rank_zero_is_reached_through_the_headless_service_jobset_creates() -> None:
    jobset = render(trainer={"replicas": 2, "gpusPerReplica": 4})
    assert jobset["metadata"]["name"] == "demo-trainer"
    assert jobset["spec"]["network"]["enableDNSHostnames"] is True
    assert jobset["spec"]["network"]["subdomain"] == "demo-trainer"
    env = {e["name"]: e for e in container(jobset)["env"]}
    # <jobset>-<replicatedJob>-<job index>-<pod index>.<subdomain>, JobSet's hostname scheme
    assert env[Env.MASTER_ADDR]["value"] == "demo-trainer-node-0-0.demo-trainer"
    assert env[Env.WORLD_SIZE]["value"] == "8"
    assert env[Env.MASTER_PORT]["value"] == "29500"
    rank_source = env[Env.RANK]["valueFrom"]["fieldRef"]["fieldPath"]
    assert rank_source == "metadata.annotations['batch.kubernetes.io/job-completion-index']"


@pytest.mark.parametrize(("replicas", "gpus"), [(1, 0), (3, 1), (2, 4)], ids=["cpu", "3x1gpu", "2x4gpu"])
def test_each_pod_gets_what_a_training_workload_injects_and_runs_the_local_argv(
    tmp_path: Path, replicas: int, gpus: int
) -> None:
    """Pod i (completion index i) gets PyTorchJob's env for rank i and runs local process i's argv."""
    trainer = {"replicas": replicas, "gpusPerReplica": gpus}
    run = build_run("dataflow_colocated", trainer=trainer)
    manifest, out, features = tmp_path / "run.yaml", tmp_path / "out", tmp_path / "out" / "features"
    local = trainer_specs(run, manifest, out, features, "redis://127.0.0.1:1/0")
    pod = container(workload_for(run.spec.deployment_mode, JOBSET).render(run, store_connection(run)))
    local_paths = {CONFIG_FILE: str(manifest), "/checkpoints": str(out), "/features": str(features)}
    for index, process in enumerate(local):
        # The kubelet resolves RANK from the pod's completion-index annotation.
        resolved = {e["name"]: e.get("value", str(index)) for e in pod["env"] if e["name"] in RENDEZVOUS}
        assert resolved == workload_env(
            pod_index=index,
            replicas=replicas,
            gpus_per_replica=gpus,
            master_addr="demo-trainer-node-0-0.demo-trainer",
            master_port=29500,
        )
        on_laptop = {**resolved, Env.MASTER_ADDR: "127.0.0.1", Env.MASTER_PORT: process.env[Env.MASTER_PORT]}
        expanded = [local_paths.get(arg, arg) for arg in expand_references(pod["command"], on_laptop)]
        program = LOCAL_CLI if expanded[0] == "specforge" else [sys.executable]
        assert list(process.argv) == [*program, *expanded[1:]]


def test_the_argv_is_the_pytorchjobs() -> None:
    run = build_run("dataflow_colocated", trainer={"replicas": 2, "gpusPerReplica": 2})
    store = store_connection(run)
    jobset = workload_for(run.spec.deployment_mode, JOBSET).render(run, store)
    pytorchjob = workload_for(run.spec.deployment_mode, TrainerBackend.PYTORCHJOB).render(run, store)
    master = pytorchjob["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert container(jobset)["command"] == master["command"]


def jobset_object(
    *conditions: tuple[str, str, str], ready: int = 0, restarts: int = 0, suspend: bool = False
) -> dict:
    return {
        "spec": {
            "suspend": suspend,
            "failurePolicy": {"maxRestarts": 2},
            "replicatedJobs": [{"name": "node", "replicas": 1}],
        },
        "status": {
            "restarts": restarts,
            "conditions": [
                {
                    "type": t,
                    "status": "True",
                    "reason": r,
                    "message": m,
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
                for t, r, m in conditions
            ],
            "replicatedJobsStatus": [{"name": "node", "ready": ready}],
        },
    }


OBSERVATIONS = [
    (None, WorkloadState.ABSENT, ""),
    (jobset_object(), WorkloadState.PENDING, "PodsPending"),
    (jobset_object(ready=1), WorkloadState.RUNNING, "PodsRunning"),
    (jobset_object(suspend=True), WorkloadState.SUSPENDED, "JobSetSuspended"),
    (jobset_object(("Suspended", "SuspendedJobs", "")), WorkloadState.SUSPENDED, "JobSetSuspended"),
    (
        jobset_object(("RestartingJobSet", "DefaultFailurePolicy", ""), restarts=1),
        WorkloadState.RESTARTING,
        "RestartingAllRanks",
    ),
    (
        jobset_object(("Completed", "AllJobsCompleted", ""), ready=1),
        WorkloadState.SUCCEEDED,
        "AllJobsCompleted",
    ),
    (jobset_object(("Failed", "FailedJobs", "job failed")), WorkloadState.FAILED, "FailedJobs"),
    (
        jobset_object(("Failed", "ReachedMaxRestarts", "jobset failed"), restarts=2),
        WorkloadState.FAILED,
        "BackoffLimitExceeded",
    ),
]


@pytest.mark.parametrize(("jobset", "state", "reason"), OBSERVATIONS)
def test_jobset_states(jobset: dict | None, state: WorkloadState, reason: str) -> None:
    seen = JobSetWorkload().observe(jobset)
    assert (seen.state, seen.reason) == (state, reason)
    assert seen.restarts == (None if jobset is None else jobset["status"]["restarts"])


def test_spent_restarts_read_as_the_operators_own_backoff_failure() -> None:
    seen = JobSetWorkload().observe(
        jobset_object(("Failed", "ReachedMaxRestarts", "jobset failed"), restarts=2)
    )
    assert seen.message == "a rank failed after 2 restarts (runPolicy.backoffLimit 2): jobset failed"
    assert seen.completion_time == "2026-01-01T00:00:00Z"


def test_the_backend_is_the_reported_one_then_the_specs_then_the_clusters() -> None:
    run = build_run("dataflow_colocated")
    assert backend_of(run, JOBSET) is JOBSET
    assert backend_of(build_run("dataflow_colocated", trainer={"backend": "pytorchjob"}), JOBSET) is (
        TrainerBackend.PYTORCHJOB
    )
    started = run.model_copy(update={"status": SpecForgeRunStatus(trainer_backend=TrainerBackend.PYTORCHJOB)})
    assert backend_of(started, JOBSET) is TrainerBackend.PYTORCHJOB, "a run under way keeps its backend"
    assert backend_of(build_run("local_colocated"), JOBSET) is None, "a single-pod Job has no backend"


def test_the_plan_renders_the_chosen_backend_and_reports_it() -> None:
    run = build_run("disaggregated", producers={"replicas": 2})
    plan = plan_children(run, finished=False, default_backend=JOBSET)
    assert plan.trainer_key == ("jobset.x-k8s.io/v1alpha2", "JobSet", "demo-trainer")
    assert plan.status_fields() == {"trainerBackend": "jobset"}
    kinds = [m["kind"] for m in plan.rendered]
    assert kinds.count("JobSet") == 1 and "Job" in kinds, "producers stay an indexed batch Job"
    local = plan_children(build_run("local_colocated"), finished=False, default_backend=JOBSET)
    assert local.trainer_key[1] == "Job" and local.status_fields() == {}


def test_the_cluster_default_comes_from_the_environment_and_a_typo_is_named() -> None:
    assert cluster_default_backend({}) is TrainerBackend.PYTORCHJOB
    assert cluster_default_backend({"SPECFORGE_TRAINER_BACKEND": "jobset"}) is JOBSET
    with pytest.raises(ValueError, match=r"SPECFORGE_TRAINER_BACKEND='jobsets'.*'pytorchjob', 'jobset'"):
        cluster_default_backend({"SPECFORGE_TRAINER_BACKEND": "jobsets"})


def test_a_backend_on_a_local_colocated_run_is_refused_with_the_reason() -> None:
    with pytest.raises(ManifestError, match=r"trainer\.backend applies to the durable modes only"):
        build_run("local_colocated", trainer={"backend": "jobset"})


def test_the_longest_run_name_leaves_every_rank_a_valid_hostname() -> None:
    """JobSet refuses a JobSet whose Job or pod hostnames would pass 63 characters."""
    name = "r" * MAX_RUN_NAME_LENGTH
    run = build_run("dataflow_colocated", name=name, trainer={"replicas": 1024})
    jobset = JobSetWorkload().render(run, store_connection(run))
    last_rank = master_address(jobset["metadata"]["name"]).split(".")[0].removesuffix("-0") + "-1023"
    assert len(last_rank) <= 63 and len(f"{jobset['metadata']['name']}-node-0") <= 63
