"""All run policies together: from one reconcile's observations to a verdict, conditions and actions.

The order is the precedence: a finished run only waits for its TTL; a run whose trainer backend is not
served waits for it (policies.backend); an expired deadline fails the run
(and stops its pods); a failed rank restarts every rank, or fails the run past ``backoffLimit``; a
workload a queue holds suspended is waiting for admission (``QueueAdmitted=False``). The ``Schedulable`` condition is reported
alongside whichever of these holds. Pure: the reconciler gathers the inputs and carries out the actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from specforge_api.run import SpecForgeRun
from specforge_api.status import Phase

from specforge_operator.policies.backend import backend_availability
from specforge_operator.policies.deadlines import active_deadline_failure, pre_running_deadline_failure
from specforge_operator.policies.pod_health import PODS_HEALTHY_CONDITION, PodHealth
from specforge_operator.policies.queueing import (
    KUEUE_NOT_INSTALLED,
    QUEUE_ADMITTED_CONDITION,
    QUEUE_CONTROLLER_CONDITION,
    WAITING_FOR_ADMISSION,
    admission_message,
    is_queue_managed,
    queue_controller_availability,
)
from specforge_operator.policies.restart import RESTARTING_REASON, RestartAction, decide_restart
from specforge_operator.policies.schedulability import SCHEDULABLE_CONDITION, Schedulability
from specforge_operator.policies.ttl import ttl_expired
from specforge_operator.status.conditions import ConditionUpdate
from specforge_operator.status.derive import Event, Verdict
from specforge_operator.workloads.base import WorkloadObservation, WorkloadState


@dataclass(frozen=True)
class PolicyInputs:
    run: SpecForgeRun
    workload: WorkloadObservation
    workload_uid: str | None
    workload_created: datetime | None
    gang_restarts: bool  # the workload fails as a whole on a rank failure and is restarted by the operator
    failure_detail: str  # the failed pod's reason, when the workload failed
    leftover_ranks: int  # trainer pods still present while the run is restarting
    workload_suspended: bool  # the workload object's own suspend flag (a queue's, or spec.suspend)
    schedulability: Schedulability | None
    now: datetime
    pod_health: PodHealth | None = None
    # "<Kind> <name>: <the API server's message>" for each child whose apply was refused (403, 422).
    rejected_children: tuple[str, ...] = ()
    # (apiVersion, kind) of the trainer workload when the API server does not serve it (policies.backend).
    unserved_workload: tuple[str, str] | None = None
    # Whether the cluster serves Kueue; None when the run names no queue (not looked up).
    kueue_served: bool | None = None


@dataclass(frozen=True)
class PolicyOutcome:
    verdict: Verdict | None = None  # overrides the phase derived from the children
    conditions: tuple[ConditionUpdate, ...] = ()
    status_fields: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    delete_trainer_workload: bool = False  # restart every rank (gang restart)
    stop_workloads: bool = False  # the run failed by policy: delete trainer and producers
    delete_run: bool = False


CHILDREN_ACCEPTED_CONDITION = "ChildrenAccepted"
CHILD_REJECTED_REASON = "ChildRejected"


def _wire_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _observed_condition(
    inputs: PolicyInputs, condition_type: str, verdict: tuple[bool, str, str] | None
) -> tuple[tuple[ConditionUpdate, ...], tuple[Event, ...]]:
    """A condition the run repeats from what it saw on its children (holds, reason, message), with one
    warning per episode (and per message change within it), not one per reconcile."""
    previous = next(
        (c for c in (inputs.run.status.conditions if inputs.run.status else []) if c.type == condition_type),
        None,
    )
    if verdict is None:
        # Nothing judged this time (pods not listed, or between scheduler and kubelet updates): the last
        # verdict stands. Dropping it would lose a False that nothing would ever clear.
        if previous is None:
            return (), ()
        kept = ConditionUpdate(condition_type, previous.status == "True", previous.reason, previous.message)
        return (kept,), ()
    holds, reason, message = verdict
    condition = ConditionUpdate(condition_type, holds, reason, message)
    news = previous is None or previous.status != "False" or previous.message != message
    events = (Event("Warning", reason, message),) if not holds and news else ()
    return (condition,), events


def _schedulable(inputs: PolicyInputs) -> tuple[tuple[ConditionUpdate, ...], tuple[Event, ...]]:
    verdict = inputs.schedulability
    judged = None if verdict is None else (verdict.schedulable, verdict.reason, verdict.message)
    return _observed_condition(inputs, SCHEDULABLE_CONDITION, judged)


def _pods_healthy(inputs: PolicyInputs) -> tuple[tuple[ConditionUpdate, ...], tuple[Event, ...]]:
    health = inputs.pod_health
    judged = None if health is None else (health.healthy, health.reason, health.message)
    return _observed_condition(inputs, PODS_HEALTHY_CONDITION, judged)


def _children_accepted(inputs: PolicyInputs) -> tuple[tuple[ConditionUpdate, ...], tuple[Event, ...]]:
    """Only runs that had a child refused carry the condition (False, then True once all are accepted)."""
    if inputs.rejected_children:
        judged = (False, CHILD_REJECTED_REASON, "; ".join(inputs.rejected_children))
    elif any(
        c.type == CHILDREN_ACCEPTED_CONDITION
        for c in (inputs.run.status.conditions if inputs.run.status else [])
    ):
        judged = (True, "Accepted", "the API server accepted every child")
    else:
        return (), ()
    return _observed_condition(inputs, CHILDREN_ACCEPTED_CONDITION, judged)


def _waiting_for(inputs: PolicyInputs) -> str:
    if inputs.schedulability is not None and not inputs.schedulability.schedulable:
        return inputs.schedulability.message
    if inputs.workload.state is WorkloadState.SUSPENDED:
        return admission_message(inputs.run)
    return inputs.workload.message or "the pods are pending"


def _queue_controller(
    inputs: PolicyInputs, kueue_served: bool
) -> tuple[tuple[ConditionUpdate, ...], tuple[Event, ...]]:
    """The condition (only once Kueue was found missing) and one warning per episode. The run keeps
    waiting for admission (QueueAdmitted=False): once Kueue is installed it admits the workload."""
    status = inputs.run.status
    previous = next(
        (c for c in (status.conditions if status else []) if c.type == QUEUE_CONTROLLER_CONDITION), None
    )
    available, message = queue_controller_availability(
        inputs.run, kueue_served=kueue_served, previously_missing=previous is not None
    )
    if available and previous is None:
        return (), ()
    reason = "KueueServed" if available else KUEUE_NOT_INSTALLED
    condition = ConditionUpdate(QUEUE_CONTROLLER_CONDITION, available, reason, message)
    news = not available and (previous is None or previous.status != "False")
    return (condition,), ((Event("Warning", KUEUE_NOT_INSTALLED, message),) if news else ())


def _was_suspended(run: SpecForgeRun) -> bool:
    """Whether the last status showed the run suspended: by spec.suspend, or held by its queue."""
    status = run.status
    if status is None:
        return False
    held = any(c.type == QUEUE_ADMITTED_CONDITION and c.status == "False" for c in status.conditions)
    return status.phase is Phase.SUSPENDED or held


def _resume_time(inputs: PolicyInputs, suspended: bool) -> datetime | None:
    """When the run last left suspension: now, when this reconcile is the first to see it resumed."""
    previous = inputs.run.status.resume_time if inputs.run.status else None
    if not suspended and _was_suspended(inputs.run):
        return inputs.now
    return previous


def evaluate_policies(inputs: PolicyInputs) -> PolicyOutcome:
    run, workload, now = inputs.run, inputs.workload, inputs.now
    status = run.status
    policy = run.spec.run_policy
    if status is not None and status.phase is not None and status.phase.is_finished:
        expired = ttl_expired(
            ttl_seconds=policy.ttl_seconds_after_finished, completion_time=status.completion_time, now=now
        )
        return PolicyOutcome(delete_run=expired)

    running_time = status.running_time if status else None
    if workload.state is WorkloadState.RUNNING and (
        running_time is None
        or (inputs.workload_created is not None and running_time < inputs.workload_created)
    ):
        running_time = now
    fields: dict[str, Any] = {}
    if running_time is not None:
        fields["runningTime"] = _wire_time(running_time)
    restarts = (status.restarts if status else None) or 0
    if workload.restarts is not None:  # the workload restarts its ranks itself (JobSet) and counts them
        restarts = max(restarts, workload.restarts)
    last_failed = status.last_failed_workload_uid if status else None
    conditions: tuple[ConditionUpdate, ...] = ()
    events: tuple[Event, ...] = ()
    for observed in (_schedulable, _pods_healthy, _children_accepted):
        more_conditions, more_events = observed(inputs)
        conditions, events = conditions + more_conditions, events + more_events
    backend_conditions, backend_events, backend_verdict = backend_availability(run, inputs.unserved_workload)
    conditions, events = conditions + backend_conditions, events + backend_events

    def outcome(**kwargs: Any) -> PolicyOutcome:
        if restarts or last_failed:
            fields.update(restarts=restarts, lastFailedWorkloadUid=last_failed)
        return PolicyOutcome(conditions=conditions, status_fields=fields, events=events, **kwargs)

    if backend_verdict is not None:
        return outcome(verdict=backend_verdict)
    if inputs.rejected_children and workload.state is WorkloadState.ABSENT:
        message = "the API server refused " + "; ".join(inputs.rejected_children)
        return outcome(verdict=Verdict(Phase.PROVISIONING, CHILD_REJECTED_REASON, message))

    suspended = run.spec.suspend or inputs.workload_suspended
    resume_time = _resume_time(inputs, suspended)
    if resume_time is not None:
        fields["resumeTime"] = _wire_time(resume_time)
    failure = active_deadline_failure(
        deadline_seconds=policy.active_deadline_seconds,
        start_time=status.start_time if status else None,
        resume_time=resume_time,
        suspended=suspended,
        now=now,
    ) or pre_running_deadline_failure(
        deadline_seconds=policy.pre_running_deadline_seconds,
        workload_created=inputs.workload_created,
        running_time=running_time,
        resume_time=resume_time,
        suspended=suspended,
        waiting_for=_waiting_for(inputs),
        now=now,
    )
    if failure is not None and workload.state not in (WorkloadState.SUCCEEDED, WorkloadState.ABSENT):
        return outcome(verdict=Verdict(Phase.FAILED, failure.reason, failure.message), stop_workloads=True)

    if inputs.gang_restarts:
        decision = decide_restart(
            workload_failed=workload.state is WorkloadState.FAILED,
            workload_uid=inputs.workload_uid,
            failure="; ".join(part for part in (workload.message, inputs.failure_detail) if part),
            restarts=restarts,
            last_failed_workload_uid=last_failed,
            backoff_limit=policy.backoff_limit,
        )
        restarts, last_failed = decision.restarts, decision.failed_workload_uid
        if decision.action is RestartAction.GIVE_UP:
            return outcome(verdict=Verdict(Phase.FAILED, decision.reason, decision.message))
        if decision.action is not RestartAction.NONE:
            return outcome(
                verdict=Verdict(Phase.RESTARTING, decision.reason, decision.message),
                delete_trainer_workload=True,  # again on WAIT: the operator may have died before deleting
            )

    restarting = status is not None and status.phase is Phase.RESTARTING
    if restarting and workload.state is WorkloadState.ABSENT and inputs.leftover_ranks:
        message = (
            f"waiting for {inputs.leftover_ranks} ranks of the failed workload to exit; "
            "then every rank starts again"
        )
        return outcome(verdict=Verdict(Phase.RESTARTING, RESTARTING_REASON, message))
    if inputs.kueue_served is not None:
        kueue_conditions, kueue_events = _queue_controller(inputs, inputs.kueue_served)
        conditions, events = conditions + kueue_conditions, events + kueue_events
    if is_queue_managed(run) and not run.spec.suspend and workload.state is not WorkloadState.ABSENT:
        admitted = not inputs.workload_suspended
        conditions += (
            ConditionUpdate(
                QUEUE_ADMITTED_CONDITION,
                admitted,
                "Admitted" if admitted else WAITING_FOR_ADMISSION,
                "" if admitted else admission_message(run),
            ),
        )
        if not admitted:
            return outcome(verdict=Verdict(Phase.PENDING, WAITING_FOR_ADMISSION, admission_message(run)))
    return outcome()
