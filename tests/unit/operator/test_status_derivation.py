"""Status derivation: observed children (+ previous status) → phase, conditions, times and events."""

from __future__ import annotations

import pytest
from specforge_api import Phase, SpecForgeRun
from specforge_api.status import SpecForgeRunStatus
from specforge_operator.status import Observed, derive_status
from specforge_operator.workloads.base import ABSENT, WorkloadObservation, WorkloadState
from unit.operator.builders import build_run

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:05:00Z"


def observed(
    workload: WorkloadState = WorkloadState.ABSENT,
    *,
    store_ready: bool = True,
    producers: WorkloadState | None = None,
    reason: str = "",
    message: str = "",
    pod_failure: str | None = None,
) -> Observed:
    return Observed(
        store_ready=store_ready,
        workload=WorkloadObservation(workload, reason, message, start_time=None, completion_time=None)
        if workload is not WorkloadState.ABSENT
        else ABSENT,
        producers=WorkloadObservation(producers, "BackoffLimitExceeded") if producers else None,
        children=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "demo-config"}],
        store_endpoint="redis://demo-redis.default.svc:6379/0",
        pod_failure=pod_failure,
    )


def with_status(run: SpecForgeRun, status: dict) -> SpecForgeRun:
    return run.model_copy(update={"status": SpecForgeRunStatus.model_validate(status)})


PHASE_TABLE = [
    # (mode, spec overrides, observation, expected phase, expected reason)
    ("local_colocated", {}, observed(), Phase.PROVISIONING, "CreatingWorkload"),
    ("local_colocated", {}, observed(WorkloadState.PENDING), Phase.PENDING, "WaitingForPods"),
    ("local_colocated", {}, observed(WorkloadState.RUNNING), Phase.RUNNING, "TrainerRunning"),
    ("local_colocated", {}, observed(WorkloadState.SUCCEEDED), Phase.SUCCEEDED, "TrainingSucceeded"),
    (
        "local_colocated",
        {},
        observed(WorkloadState.FAILED, reason="BackoffLimitExceeded"),
        Phase.FAILED,
        "BackoffLimitExceeded",
    ),
    ("local_colocated", {"suspend": True}, observed(WorkloadState.SUSPENDED), Phase.SUSPENDED, "Suspended"),
    ("dataflow_colocated", {}, observed(store_ready=False), Phase.PROVISIONING, "WaitingForMetadataStore"),
    ("dataflow_colocated", {}, observed(WorkloadState.RUNNING), Phase.RUNNING, "TrainerRunning"),
    ("disaggregated", {}, observed(store_ready=False), Phase.PROVISIONING, "WaitingForMetadataStore"),
    (
        "disaggregated",
        {},
        observed(WorkloadState.RUNNING, producers=WorkloadState.FAILED),
        Phase.FAILED,
        "ProducersFailed",
    ),
    ("disaggregated", {"suspend": True}, observed(store_ready=False), Phase.SUSPENDED, "Suspended"),
]


@pytest.mark.parametrize(("mode", "spec", "seen", "phase", "reason"), PHASE_TABLE)
def test_phase_table(mode: str, spec: dict, seen: Observed, phase: Phase, reason: str) -> None:
    status, events = derive_status(build_run(mode, **spec), seen, NOW)
    assert status["phase"] == phase.value
    true_conditions = {c["type"]: c for c in status["conditions"] if c["status"] == "True"}
    if phase in (Phase.RUNNING, Phase.SUSPENDED, Phase.SUCCEEDED, Phase.FAILED):
        assert true_conditions[phase.value]["reason"] == reason
    assert [event.reason for event in events] == [reason]
    assert events[0].type == ("Warning" if phase is Phase.FAILED else "Normal")


def test_failure_message_carries_the_pod_reason() -> None:
    seen = observed(
        WorkloadState.FAILED,
        reason="BackoffLimitExceeded",
        message="Job has reached the backoff limit",
        pod_failure="pod demo-trainer-x: Error (exit code 1)",
    )
    status, events = derive_status(build_run(), seen, NOW)
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert "exit code 1" in failed["message"] and "backoff limit" in failed["message"]
    assert "exit code 1" in events[0].message
    assert status["completionTime"] == NOW


def test_store_condition_only_in_durable_modes() -> None:
    local, _ = derive_status(build_run("local_colocated"), observed(), NOW)
    durable, _ = derive_status(build_run("dataflow_colocated"), observed(store_ready=False), NOW)
    assert "StoreReady" not in {c["type"] for c in local["conditions"]}
    store = next(c for c in durable["conditions"] if c["type"] == "StoreReady")
    assert (store["status"], store["reason"]) == ("False", "WaitingForMetadataStore")
    assert durable["metadataStoreEndpoint"].startswith("redis://demo-redis.default.svc")


def test_unchanged_phase_keeps_transition_times_and_posts_nothing() -> None:
    run = build_run()
    first, _ = derive_status(run, observed(WorkloadState.RUNNING), NOW)
    again, events = derive_status(with_status(run, first), observed(WorkloadState.RUNNING), LATER)
    assert again == first
    assert events == []


def test_transition_moves_only_the_changed_conditions() -> None:
    run = build_run()
    running, _ = derive_status(run, observed(WorkloadState.RUNNING), NOW)
    done, _ = derive_status(with_status(run, running), observed(WorkloadState.SUCCEEDED), LATER)
    times = {c["type"]: c["lastTransitionTime"] for c in done["conditions"]}
    assert times == {"Running": LATER, "Suspended": NOW, "Succeeded": LATER, "Failed": NOW}
    assert done["startTime"] == NOW and done["completionTime"] == LATER


def test_finished_run_is_final_and_progress_is_never_written() -> None:
    run = build_run()
    done, _ = derive_status(run, observed(WorkloadState.SUCCEEDED), NOW)
    finished = with_status(run, {**done, "progress": {"step": 10, "loss": 1.5}})
    status, events = derive_status(finished, observed(), LATER)  # e.g. the Job was removed by its TTL
    assert status["phase"] == "Succeeded" and events == []
    assert "progress" not in status


def test_gpus_and_observed_generation() -> None:
    status, _ = derive_status(build_run("disaggregated", trainer={"gpusPerReplica": 2}), observed(), NOW)
    assert status["gpus"] == 2 + 2  # one trainer with 2 GPUs, two producers with 1
    assert status["observedGeneration"] == 1
