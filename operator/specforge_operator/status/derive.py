"""Children (+ the previous status) → the operator's part of the run status, and the events to post.

Pure: the reconciler gathers observations, this decides. Precedence, first match wins: an already
finished run stays finished; a verdict of the run policies (deadlines, gang restarts, queue admission); a failed workload or producer Job fails the run; a succeeded workload
succeeds it; ``suspend`` suspends it; a managed store that is not ready keeps it Provisioning; then the
workload's own state (absent → Provisioning, pods pending → Pending, running → Running).
``status.progress``, ``status.evaluation`` and ``status.export`` belong to the trainer and are never part
of the result; the ``DraftQualified`` condition is the operator's verdict on ``status.evaluation``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from specforge_api.run import SpecForgeRun
from specforge_api.status import Phase

from specforge_operator.status.conditions import ConditionUpdate, merge_conditions
from specforge_operator.status.qualification import draft_qualified
from specforge_operator.workloads.base import WorkloadObservation, WorkloadState

TRAINER_OWNED_FIELDS = ("progress", "evaluation", "export")


@dataclass(frozen=True)
class Observed:
    """What the reconciler saw this time."""

    store_ready: bool
    workload: WorkloadObservation
    producers: WorkloadObservation | None
    children: list[dict[str, str]]  # ChildReference wire form of the children that exist
    store_endpoint: str | None
    pod_failure: str | None = None  # "pod X: reason (exit code N)" of a failed pod, when known
    # What the run policies (specforge_operator.policies) decided: a verdict that overrides the children's,
    # extra conditions (Schedulable) and the status fields they keep (restarts, runningTime).
    policy_verdict: Verdict | None = None
    policy_conditions: tuple[ConditionUpdate, ...] = ()
    policy_status: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Verdict:
    phase: Phase
    reason: str
    message: str


def _verdict(run: SpecForgeRun, observed: Observed) -> Verdict:
    if observed.policy_verdict is not None:
        return observed.policy_verdict
    workload, producers = observed.workload, observed.producers
    if workload.state is WorkloadState.FAILED:
        detail = "; ".join(part for part in (workload.message, observed.pod_failure) if part)
        return Verdict(
            Phase.FAILED,
            workload.reason or "TrainerFailed",
            f"trainer workload failed: {detail}".rstrip(": "),
        )
    if producers is not None and producers.state is WorkloadState.FAILED:
        detail = "; ".join(part for part in (producers.message, observed.pod_failure) if part)
        return Verdict(
            Phase.FAILED, "ProducersFailed", f"producer Job failed: {producers.reason} {detail}".strip()
        )
    if workload.state is WorkloadState.SUCCEEDED:
        return Verdict(Phase.SUCCEEDED, "TrainingSucceeded", "the trainer workload completed")
    if run.spec.suspend:
        return Verdict(Phase.SUSPENDED, "Suspended", "spec.suspend is true: pods are stopped, data is kept")
    if not observed.store_ready:
        return Verdict(
            Phase.PROVISIONING,
            "WaitingForMetadataStore",
            "waiting for the managed Redis to become ready; trainers and producers start after it",
        )
    if workload.state is WorkloadState.RESTARTING:  # the workload restarts every rank itself (JobSet)
        return Verdict(Phase.RESTARTING, workload.reason, workload.message)
    if workload.state is WorkloadState.RUNNING:
        return Verdict(Phase.RUNNING, "TrainerRunning", "trainer pods are running")
    if workload.state is WorkloadState.ABSENT:
        return Verdict(Phase.PROVISIONING, "CreatingWorkload", "creating the trainer workload")
    return Verdict(Phase.PENDING, "WaitingForPods", "the trainer workload's pods are not running yet")


def derive_status(run: SpecForgeRun, observed: Observed, now: str) -> tuple[dict[str, Any], list[Event]]:
    """The operator-owned status fields (wire form) and the events this transition deserves."""
    previous = run.status.model_dump(by_alias=True, exclude_none=True, mode="json") if run.status else {}
    previous_phase = run.status.phase if run.status else None
    if previous_phase is not None and previous_phase.is_finished:
        # Finished is final: later child changes (TTL, GC) don't matter. The trainer's evaluation may
        # still arrive after the reconcile that saw the workload succeed, and DraftQualified follows it.
        return _requalified(run, operator_fields(previous), now), []
    verdict = _verdict(run, observed)
    generation = run.metadata.generation
    updates = []
    if run.spec.deployment_mode.durable:
        updates.append(
            ConditionUpdate(
                "StoreReady",
                observed.store_ready,
                "StoreReady" if observed.store_ready else "WaitingForMetadataStore",
                f"metadata store at {observed.store_endpoint}"
                if observed.store_ready
                else f"waiting for {observed.store_endpoint} to have a ready replica; "
                "the trainer workload and producers are created after it",
            )
        )
    for phase, condition_type in (
        (Phase.RUNNING, "Running"),
        (Phase.SUSPENDED, "Suspended"),
        (Phase.SUCCEEDED, "Succeeded"),
        (Phase.FAILED, "Failed"),
    ):
        holds = verdict.phase is phase
        updates.append(
            ConditionUpdate(
                condition_type,
                holds,
                verdict.reason if holds else "NotInPhase",
                verdict.message if holds else "",
            )
        )
    updates.extend(observed.policy_conditions)
    qualified = draft_qualified(run, finished=verdict.phase.is_finished)
    if qualified is not None:
        updates.append(qualified)
    status: dict[str, Any] = {
        **observed.policy_status,
        "phase": verdict.phase.value,
        "conditions": merge_conditions(
            previous.get("conditions", []), updates, now=now, generation=generation
        ),
        "children": observed.children,
        "gpus": run.spec.total_gpus(),
    }
    if generation is not None:
        status["observedGeneration"] = generation
    if observed.store_endpoint:
        status["metadataStoreEndpoint"] = observed.store_endpoint
    start = previous.get("startTime") or observed.workload.start_time
    if start is None and observed.workload.state is not WorkloadState.ABSENT:
        start = now
    if start:
        status["startTime"] = start
    if verdict.phase.is_finished:
        status["completionTime"] = previous.get("completionTime") or observed.workload.completion_time or now
    events = []
    if verdict.phase is not previous_phase:
        kind = "Warning" if verdict.phase is Phase.FAILED else "Normal"
        events.append(Event(kind, verdict.reason, f"{verdict.phase.value}: {verdict.message}"))
        if verdict.phase is Phase.SUCCEEDED and qualified is not None and not qualified.status:
            events.append(
                Event("Warning", qualified.reason, f"the draft does not qualify: {qualified.message}")
            )
    return status, events


def _requalified(run: SpecForgeRun, status: dict[str, Any], now: str) -> dict[str, Any]:
    """A finished run's status with DraftQualified brought up to date with ``status.evaluation``."""
    qualified = draft_qualified(run, finished=True)
    if qualified is None:
        return status
    conditions = status.get("conditions", [])
    (merged,) = merge_conditions(conditions, [qualified], now=now, generation=run.metadata.generation)
    kept = [condition for condition in conditions if condition.get("type") != qualified.type]
    return {**status, "conditions": [*kept, merged]}


def trainer_fields(status: dict[str, Any]) -> dict[str, Any]:
    """The part of a status (wire form) the trainer writes: progress, evaluation, export."""
    return {key: value for key, value in status.items() if key in TRAINER_OWNED_FIELDS}


def operator_fields(status: dict[str, Any]) -> dict[str, Any]:
    """The part of a status (wire form) the operator writes; the trainer owns the rest."""
    return {key: value for key, value in status.items() if key not in TRAINER_OWNED_FIELDS}
