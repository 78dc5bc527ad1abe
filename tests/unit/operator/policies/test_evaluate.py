"""The policies together: precedence, the status fields they keep, and the actions they ask for."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from specforge_api.status import Phase, SpecForgeRunStatus
from specforge_operator.policies.evaluate import PolicyInputs, PolicyOutcome, evaluate_policies
from specforge_operator.policies.schedulability import Schedulability
from specforge_operator.workloads.base import WorkloadObservation, WorkloadState
from unit.operator.builders import build_run
from unit.operator.policies.builders import at

UNSCHEDULABLE = Schedulability(False, "Unschedulable", "1 of 1 pods cannot be scheduled; pod p: no GPUs")


def inputs(
    *,
    state: WorkloadState = WorkloadState.PENDING,
    status: dict[str, Any] | None = None,
    run_policy: dict[str, Any] | None = None,
    schedulability: Schedulability | None = None,
    now: float = 100,
    created: float | None = 0,
    uid: str = "w1",
    leftover_ranks: int = 0,
    mode: str = "dataflow_colocated",
    **spec: Any,
) -> PolicyInputs:
    """A PyTorchJob run (gang restarts) unless ``mode`` is local_colocated (a single-pod Job)."""
    run = build_run(mode, runPolicy=run_policy or {}, **spec)
    if status is not None:
        run = run.model_copy(update={"status": SpecForgeRunStatus.model_validate(status)})
    return PolicyInputs(
        run=run,
        workload=WorkloadObservation(
            state, message="1 Master replica(s) failed" if state == "Failed" else ""
        ),
        workload_uid=uid,
        workload_created=None if created is None else at(created),
        gang_restarts=mode != "local_colocated",  # as the workloads declare: a Job keeps its backoffLimit
        failure_detail="pod demo-trainer-master-0: Error (exit code 1)",
        leftover_ranks=leftover_ranks,
        workload_suspended=state == WorkloadState.SUSPENDED,
        schedulability=schedulability,
        now=at(now),
    )


def wire(offset: float) -> str:
    return at(offset).strftime("%Y-%m-%dT%H:%M:%SZ")


# A run the scheduler could not place, as the previous reconcile left its status.
WAS_UNSCHEDULABLE = {
    "conditions": [
        {
            "type": "Schedulable",
            "status": "False",
            "reason": "Unschedulable",
            "message": UNSCHEDULABLE.message,
            "lastTransitionTime": wire(0),
        }
    ]
}


def summary(outcome: PolicyOutcome) -> tuple:
    verdict = outcome.verdict
    return (
        (verdict.phase, verdict.reason) if verdict else None,
        outcome.delete_trainer_workload,
        outcome.stop_workloads,
        outcome.delete_run,
    )


CASES = {
    "pending, no policy applies": (inputs(), (None, False, False, False)),
    "rank failed: restart every rank": (
        inputs(state=WorkloadState.FAILED),
        ((Phase.RESTARTING, "RestartingAllRanks"), True, False, False),
    ),
    "restart already counted: delete again, do not count": (
        inputs(state=WorkloadState.FAILED, status={"restarts": 1, "lastFailedWorkloadUid": "w1"}),
        ((Phase.RESTARTING, "RestartingAllRanks"), True, False, False),
    ),
    "backoff limit spent": (
        inputs(
            state=WorkloadState.FAILED,
            uid="w3",
            run_policy={"backoffLimit": 2},
            status={"restarts": 2, "lastFailedWorkloadUid": "w2"},
        ),
        ((Phase.FAILED, "BackoffLimitExceeded"), False, False, False),
    ),
    "active deadline beats a restart": (
        inputs(
            state=WorkloadState.FAILED,
            run_policy={"activeDeadlineSeconds": 50},
            status={"startTime": wire(0)},
        ),
        ((Phase.FAILED, "DeadlineExceeded"), False, True, False),
    ),
    "active deadline, pods running: fail and stop them": (
        inputs(
            state=WorkloadState.RUNNING,
            run_policy={"activeDeadlineSeconds": 50},
            status={"startTime": wire(0)},
        ),
        ((Phase.FAILED, "DeadlineExceeded"), False, True, False),
    ),
    "active deadline, but the workload succeeded: the run succeeded": (
        inputs(
            state=WorkloadState.SUCCEEDED,
            run_policy={"activeDeadlineSeconds": 50},
            status={"startTime": wire(0)},
        ),
        (None, False, False, False),
    ),
    # The deadline acts on a workload and its pods: with none (a gang restart between deleting the failed
    # workload and recreating it) there is nothing to stop, and the restart goes on.
    "active deadline, no workload (old ranks still exiting): the restart goes on": (
        inputs(
            state=WorkloadState.ABSENT,
            created=None,
            run_policy={"activeDeadlineSeconds": 50},
            status={"phase": "Restarting", "startTime": wire(0)},
            leftover_ranks=2,
        ),
        ((Phase.RESTARTING, "RestartingAllRanks"), False, False, False),
    ),
    "active deadline, no workload: no verdict of the policies": (
        inputs(
            state=WorkloadState.ABSENT,
            created=None,
            run_policy={"activeDeadlineSeconds": 50},
            status={"phase": "Restarting", "startTime": wire(0)},
        ),
        (None, False, False, False),
    ),
    # local_colocated's single-pod Job is not restarted by the operator: the Job's own backoffLimit
    # retries the pod, and a failed Job fails the run through the derived status, not a policy verdict.
    "single-pod Job failed: no gang restart": (
        inputs(mode="local_colocated", state=WorkloadState.FAILED),
        (None, False, False, False),
    ),
    "single-pod Job past its active deadline: fail and stop": (
        inputs(
            mode="local_colocated",
            state=WorkloadState.RUNNING,
            run_policy={"activeDeadlineSeconds": 50},
            status={"startTime": wire(0)},
        ),
        ((Phase.FAILED, "DeadlineExceeded"), False, True, False),
    ),
    "pods never started: pre-running deadline": (
        inputs(run_policy={"preRunningDeadlineSeconds": 30}, schedulability=UNSCHEDULABLE),
        ((Phase.FAILED, "PreRunningDeadlineExceeded"), False, True, False),
    ),
    "suspended by the user: no pre-running deadline": (
        inputs(state=WorkloadState.SUSPENDED, run_policy={"preRunningDeadlineSeconds": 30}, suspend=True),
        (None, False, False, False),
    ),
    "suspended by a queue: waiting for admission": (
        inputs(state=WorkloadState.SUSPENDED, scheduling={"queueName": "team-a"}),
        ((Phase.PENDING, "WaitingForQueueAdmission"), False, False, False),
    ),
    "created suspended for a queue, not yet seen by its controller: waiting": (
        replace(inputs(scheduling={"queueName": "team-a"}), workload_suspended=True),
        ((Phase.PENDING, "WaitingForQueueAdmission"), False, False, False),
    ),
    "admitted by the queue: no verdict of its own": (
        inputs(state=WorkloadState.RUNNING, scheduling={"queueName": "team-a"}),
        (None, False, False, False),
    ),
    "restarting, old ranks still exiting: hold": (
        inputs(state=WorkloadState.ABSENT, created=None, status={"phase": "Restarting"}, leftover_ranks=2),
        ((Phase.RESTARTING, "RestartingAllRanks"), False, False, False),
    ),
    "restarting, old ranks gone: nothing held": (
        inputs(state=WorkloadState.ABSENT, created=None, status={"phase": "Restarting"}),
        (None, False, False, False),
    ),
    "finished within its TTL": (
        inputs(
            run_policy={"ttlSecondsAfterFinished": 60},
            status={"phase": "Succeeded", "completionTime": wire(50)},
        ),
        (None, False, False, False),
    ),
    "finished past its TTL: delete the run": (
        inputs(
            run_policy={"ttlSecondsAfterFinished": 60},
            status={"phase": "Failed", "completionTime": wire(40)},
        ),
        (None, False, False, True),
    ),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
def test_precedence_and_actions(given: PolicyInputs, expected: tuple) -> None:
    assert summary(evaluate_policies(given)) == expected


def test_restart_count_and_failed_uid_are_kept_in_status() -> None:
    outcome = evaluate_policies(inputs(state=WorkloadState.FAILED, uid="w7", status={"restarts": 1}))
    assert outcome.status_fields == {"restarts": 2, "lastFailedWorkloadUid": "w7"}
    healthy = evaluate_policies(
        inputs(
            state=WorkloadState.RUNNING,
            uid="w8",
            created=90,
            status={"restarts": 2, "lastFailedWorkloadUid": "w7"},
        )
    )
    assert healthy.status_fields == {"restarts": 2, "lastFailedWorkloadUid": "w7", "runningTime": wire(100)}


def test_running_time_moves_only_for_a_new_workload() -> None:
    kept = evaluate_policies(inputs(state=WorkloadState.RUNNING, created=0, status={"runningTime": wire(10)}))
    assert kept.status_fields["runningTime"] == wire(10)
    renewed = evaluate_policies(
        inputs(state=WorkloadState.RUNNING, created=50, status={"runningTime": wire(10)})
    )
    assert renewed.status_fields["runningTime"] == wire(100)
    # One-second timestamps: pods running in the second their workload was created ran on this workload.
    same_second = evaluate_policies(
        inputs(state=WorkloadState.RUNNING, created=50, status={"runningTime": wire(50)})
    )
    assert same_second.status_fields["runningTime"] == wire(50)


def test_a_single_pod_job_that_failed_counts_no_restart() -> None:
    outcome = evaluate_policies(inputs(mode="local_colocated", state=WorkloadState.FAILED, uid="w7"))
    assert outcome.status_fields == {} and not outcome.delete_trainer_workload


def test_unschedulable_warns_once_per_message() -> None:
    first = evaluate_policies(inputs(schedulability=UNSCHEDULABLE))
    (condition,) = first.conditions
    assert (condition.type, condition.status, condition.message) == (
        "Schedulable",
        False,
        UNSCHEDULABLE.message,
    )
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "Unschedulable")]
    previous = WAS_UNSCHEDULABLE
    assert evaluate_policies(inputs(schedulability=UNSCHEDULABLE, status=previous)).events == ()
    cleared = evaluate_policies(
        inputs(
            schedulability=Schedulability(True, "PodsScheduled", "all 1 pods are scheduled"), status=previous
        )
    )
    assert [(c.status, c.reason) for c in cleared.conditions] == [
        (True, "PodsScheduled")
    ] and not cleared.events


def test_no_pod_verdict_keeps_the_last_schedulable_condition() -> None:
    """A reconcile that judges no pod (none listed, or a pod between scheduler and kubelet) must not drop
    Schedulable=False: once gone, nothing would list the pods again to clear it."""
    previous = WAS_UNSCHEDULABLE
    kept = evaluate_policies(inputs(state=WorkloadState.RUNNING, schedulability=None, status=previous))
    assert [(c.type, c.status, c.reason, c.message) for c in kept.conditions] == [
        ("Schedulable", False, "Unschedulable", UNSCHEDULABLE.message)
    ] and not kept.events
    assert evaluate_policies(inputs(schedulability=None)).conditions == ()


def test_queue_admission_condition() -> None:
    waiting = evaluate_policies(inputs(state=WorkloadState.SUSPENDED, scheduling={"queueName": "team-a"}))
    assert [(c.type, c.status, c.reason) for c in waiting.conditions] == [
        ("QueueAdmitted", False, "WaitingForQueueAdmission")
    ]
    assert "team-a" in waiting.conditions[0].message
    admitted = evaluate_policies(inputs(state=WorkloadState.RUNNING, scheduling={"queueName": "team-a"}))
    assert [(c.type, c.status) for c in admitted.conditions] == [("QueueAdmitted", True)]
    assert evaluate_policies(inputs(state=WorkloadState.RUNNING)).conditions == ()


def test_verdicts_carry_the_message_the_status_shows() -> None:
    """The verdict's message is what `kubectl get` and the run's conditions show: the reason the user acts on."""
    unschedulable = evaluate_policies(
        inputs(run_policy={"preRunningDeadlineSeconds": 30}, schedulability=UNSCHEDULABLE)
    ).verdict
    assert unschedulable is not None and unschedulable.message.endswith(
        f"(waited 100 s): {UNSCHEDULABLE.message}"
    )
    queued = evaluate_policies(
        inputs(
            state=WorkloadState.SUSPENDED,
            run_policy={"preRunningDeadlineSeconds": 30},
            scheduling={"queueName": "team-a"},
        )
    ).verdict
    # Time held by the queue is suspended time: no deadline runs, the run waits for admission.
    assert queued is not None and queued.reason == "WaitingForQueueAdmission" and "team-a" in queued.message
    pending = evaluate_policies(inputs(run_policy={"preRunningDeadlineSeconds": 30})).verdict
    assert pending is not None and pending.message.endswith("(waited 100 s): the pods are pending")

    restart = evaluate_policies(inputs(state=WorkloadState.FAILED)).verdict
    assert restart is not None and restart.message.startswith("restart 1 of at most ")
    assert restart.message.endswith(
        ": 1 Master replica(s) failed; pod demo-trainer-master-0: Error (exit code 1)"
    )
    given_up = evaluate_policies(
        inputs(state=WorkloadState.FAILED, uid="w3", run_policy={"backoffLimit": 1}, status={"restarts": 1})
    ).verdict
    assert given_up is not None and given_up.message == (
        "a rank failed after 1 restarts (runPolicy.backoffLimit 1): "
        "1 Master replica(s) failed; pod demo-trainer-master-0: Error (exit code 1)"
    )
    holding = evaluate_policies(
        inputs(state=WorkloadState.ABSENT, created=None, status={"phase": "Restarting"}, leftover_ranks=2)
    ).verdict
    assert holding is not None and holding.message.startswith("waiting for 2 ranks of the failed workload")
    admission = evaluate_policies(inputs(state=WorkloadState.SUSPENDED, scheduling={"queueName": "team-a"}))
    assert admission.verdict is not None and "team-a" in admission.verdict.message


def test_pods_running_past_the_pre_running_deadline_are_not_failed_by_it() -> None:
    running = evaluate_policies(
        inputs(state=WorkloadState.RUNNING, created=0, run_policy={"preRunningDeadlineSeconds": 30})
    )
    assert running.verdict is None and running.status_fields == {"runningTime": wire(100)}


def test_a_first_restart_is_counted_from_zero() -> None:
    outcome = evaluate_policies(inputs(state=WorkloadState.FAILED, uid="w1"))
    assert outcome.status_fields == {"restarts": 1, "lastFailedWorkloadUid": "w1"}
    assert evaluate_policies(inputs(state=WorkloadState.PENDING)).status_fields == {}


def test_a_queued_run_reports_admission_beside_schedulability() -> None:
    admitted = evaluate_policies(
        inputs(state=WorkloadState.RUNNING, scheduling={"queueName": "team-a"}, schedulability=UNSCHEDULABLE)
    )
    assert [(c.type, c.status, c.reason, c.message) for c in admitted.conditions] == [
        ("Schedulable", False, "Unschedulable", UNSCHEDULABLE.message),
        ("QueueAdmitted", True, "Admitted", ""),
    ]
    assert [(e.type, e.reason, e.message) for e in admitted.events] == [
        ("Warning", "Unschedulable", UNSCHEDULABLE.message)
    ]


def test_no_pod_verdict_keeps_a_schedulable_true_condition_true() -> None:
    previous = {
        "conditions": [
            {
                "type": "Schedulable",
                "status": "True",
                "reason": "PodsScheduled",
                "message": "all 1 pods are scheduled",
                "lastTransitionTime": wire(0),
            }
        ]
    }
    kept = evaluate_policies(inputs(state=WorkloadState.RUNNING, schedulability=None, status=previous))
    assert [(c.type, c.status, c.reason) for c in kept.conditions] == [("Schedulable", True, "PodsScheduled")]


QUEUED_STATUS = {
    "phase": "Pending",
    "conditions": [
        {
            "type": "QueueAdmitted",
            "status": "False",
            "reason": "WaitingForQueueAdmission",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
    ],
}


def test_deadlines_count_from_the_admission_not_from_the_time_spent_queued() -> None:
    """Queued for 1000 s with a 30 s pre-running deadline: admitted, the run gets its 30 s from then on."""
    policy = {"preRunningDeadlineSeconds": 30, "activeDeadlineSeconds": 60}
    admitted = evaluate_policies(
        inputs(
            state=WorkloadState.PENDING,
            now=1000,
            run_policy=policy,
            status=QUEUED_STATUS,
            scheduling={"queueName": "team-a"},
        )
    )
    assert admitted.verdict is None, admitted.verdict
    assert admitted.status_fields["resumeTime"] == wire(1000)
    later = {**QUEUED_STATUS, "conditions": [], "resumeTime": wire(1000), "startTime": wire(0)}
    within = evaluate_policies(
        inputs(now=1029, run_policy=policy, status=later, scheduling={"queueName": "team-a"})
    )
    assert within.verdict is None and within.status_fields["resumeTime"] == wire(1000)
    past = evaluate_policies(
        inputs(now=1030, run_policy=policy, status=later, scheduling={"queueName": "team-a"})
    )
    assert past.verdict is not None and past.verdict.reason == "PreRunningDeadlineExceeded"


def test_a_user_suspension_restarts_the_active_deadline_on_resume() -> None:
    policy = {"activeDeadlineSeconds": 60}
    suspended = {"phase": "Suspended", "startTime": wire(0)}
    resumed = evaluate_policies(
        inputs(state=WorkloadState.RUNNING, now=500, run_policy=policy, status=suspended)
    )
    assert resumed.verdict is None and resumed.status_fields["resumeTime"] == wire(500)
    still_suspended = evaluate_policies(
        inputs(state=WorkloadState.SUSPENDED, now=500, run_policy=policy, status=suspended, suspend=True)
    )
    assert not still_suspended.stop_workloads, still_suspended.verdict


def _with_kueue(served: bool | None, status: dict[str, Any] | None = None) -> PolicyInputs:
    return replace(
        inputs(state=WorkloadState.SUSPENDED, scheduling={"queueName": "team-a"}, status=status),
        kueue_served=served,
    )


def test_a_queue_label_without_kueue_says_what_to_install_once_and_clears_when_it_appears() -> None:
    missing = evaluate_policies(_with_kueue(False))
    (controller,) = [c for c in missing.conditions if c.type == "QueueControllerAvailable"]
    assert (controller.status, controller.reason) == (False, "KueueNotInstalled")
    assert "install Kueue" in controller.message and "team-a" in controller.message
    assert [e.reason for e in missing.events].count("KueueNotInstalled") == 1
    # Still waiting for admission, which Kueue gives once installed.
    assert missing.verdict is not None and missing.verdict.reason == "WaitingForQueueAdmission"
    reported = {
        "conditions": [
            {
                "type": "QueueControllerAvailable",
                "status": "False",
                "reason": "KueueNotInstalled",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ]
    }
    again = evaluate_policies(_with_kueue(False, reported))
    assert "KueueNotInstalled" not in [e.reason for e in again.events], "one warning per episode"
    installed = evaluate_policies(_with_kueue(True, reported))
    (controller,) = [c for c in installed.conditions if c.type == "QueueControllerAvailable"]
    assert (controller.status, controller.reason) == (True, "KueueServed")
    never_missing = evaluate_policies(_with_kueue(True))
    assert not [c for c in never_missing.conditions if c.type == "QueueControllerAvailable"]
