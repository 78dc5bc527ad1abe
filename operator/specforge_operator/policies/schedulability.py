"""Pods the scheduler cannot place → a ``Schedulable`` condition carrying the scheduler's own message.

Without it a run that asks for more GPUs than the cluster has sits in Pending with no explanation; the
scheduler already wrote why on each pod (``PodScheduled=False``, reason ``Unschedulable``), so the run
repeats it. No verdict while no pod has been judged yet, so the condition does not flap on creation.
The managed store's pod counts like the workloads' pods: a Redis that cannot be placed holds the run
back just as surely. When the scheduler's reason is an unbound claim, the run's claims that are still
Pending are named, with the StorageClass they wait for (a cluster without a default StorageClass leaves a
claim without one Pending forever).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SCHEDULABLE_CONDITION = "Schedulable"
UNSCHEDULABLE_REASON = "Unschedulable"
SCHEDULED_REASON = "PodsScheduled"
UNBOUND_CLAIMS_REASON = "UnboundPersistentVolumeClaims"
FINISHED_POD_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Schedulability:
    schedulable: bool
    reason: str
    message: str


def _pod_scheduled(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    conditions: list[Mapping[str, Any]] = (pod.get("status") or {}).get("conditions") or []
    for condition in conditions:
        if condition.get("type") == "PodScheduled":
            return condition
    return None


def live_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The pods neither finished nor terminating: the ones whose state says something about the run now."""
    return [
        pod
        for pod in pods
        if (pod.get("status") or {}).get("phase") not in FINISHED_POD_PHASES
        and not pod["metadata"].get("deletionTimestamp")
    ]


def pod_schedulability(pods: Iterable[Mapping[str, Any]]) -> Schedulability | None:
    """Whether the run's live pods are scheduled; None when there is nothing to judge yet."""
    live = live_pods(pods)
    if not live:
        return None
    unschedulable = []
    scheduled = 0
    for pod in sorted(live, key=lambda pod: pod["metadata"]["name"]):
        condition = _pod_scheduled(pod)
        if condition is None:
            continue
        if condition.get("status") == "True":
            scheduled += 1
        elif condition.get("reason") == UNSCHEDULABLE_REASON:
            unschedulable.append((pod["metadata"]["name"], condition.get("message") or "no message"))
    if unschedulable:
        name, message = unschedulable[0]
        return Schedulability(
            False,
            UNSCHEDULABLE_REASON,
            f"{len(unschedulable)} of {len(live)} pods cannot be scheduled; pod {name}: {message}",
        )
    if scheduled == len(live):
        return Schedulability(True, SCHEDULED_REASON, f"all {scheduled} pods are scheduled")
    return None


def waits_for_claims(verdict: Schedulability) -> bool:
    return (
        not verdict.schedulable
        and "unbound" in verdict.message
        and "PersistentVolumeClaim" in verdict.message
    )


def with_unbound_claims(verdict: Schedulability, claims: Iterable[Mapping[str, Any]]) -> Schedulability:
    """``verdict`` with the run's Pending claims named, and the StorageClass each waits for."""
    pending = []
    for claim in sorted(claims, key=lambda claim: claim["metadata"]["name"]):
        if (claim.get("status") or {}).get("phase") != "Pending":
            continue
        storage_class = (claim.get("spec") or {}).get("storageClassName")
        wanted = f"StorageClass {storage_class}" if storage_class else "no StorageClass (the cluster default)"
        pending.append(f"{claim['metadata']['name']} ({wanted})")
    if not pending:
        return verdict
    note = f"; claims not bound: {', '.join(pending)}"
    return Schedulability(verdict.schedulable, UNBOUND_CLAIMS_REASON, verdict.message + note)
