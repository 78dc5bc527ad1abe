"""Pods → Schedulable condition, table-driven."""

from __future__ import annotations

import pytest
from specforge_operator.policies.schedulability import (
    Schedulability,
    pod_schedulability,
    waits_for_claims,
    with_unbound_claims,
)
from unit.operator.policies.builders import pod

GPU_MESSAGE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."

CASES = {
    "no pods: nothing to judge": ([], None),
    "not judged yet": ([pod("a-0")], None),
    "all scheduled": (
        [pod("a-0", scheduled=True), pod("a-1", phase="Running", scheduled=True)],
        Schedulability(True, "PodsScheduled", "all 2 pods are scheduled"),
    ),
    "one of two unschedulable, scheduler message kept": (
        [pod("a-0", scheduled=True), pod("a-1", scheduled=False, message=GPU_MESSAGE)],
        Schedulability(False, "Unschedulable", f"1 of 2 pods cannot be scheduled; pod a-1: {GPU_MESSAGE}"),
    ),
    "first unschedulable pod by name is quoted": (
        [pod("b", scheduled=False, message="second"), pod("a", scheduled=False, message="first")],
        Schedulability(False, "Unschedulable", "2 of 2 pods cannot be scheduled; pod a: first"),
    ),
    "finished and terminating pods are ignored": (
        [
            pod("old", phase="Failed", scheduled=False, message="stale"),
            pod("gone", scheduled=False, message="stale", deleting=True),
            pod("new", scheduled=True),
        ],
        Schedulability(True, "PodsScheduled", "all 1 pods are scheduled"),
    ),
    "scheduling gated (not Unschedulable) is no verdict": (
        [pod("a-0", scheduled=False, reason="SchedulingGated")],
        None,
    ),
    "one scheduled, one not judged: no verdict yet": ([pod("a-0", scheduled=True), pod("a-1")], None),
    "one not judged, one unschedulable: unschedulable": (
        [pod("a-0"), pod("a-1", scheduled=False, message=GPU_MESSAGE)],
        Schedulability(False, "Unschedulable", f"1 of 2 pods cannot be scheduled; pod a-1: {GPU_MESSAGE}"),
    ),
    "unschedulable without a message": (
        [pod("a-0", scheduled=False)],
        Schedulability(False, "Unschedulable", "1 of 1 pods cannot be scheduled; pod a-0: no message"),
    ),
}


@pytest.mark.parametrize(("pods", "expected"), CASES.values(), ids=CASES.keys())
def test_pod_schedulability(pods: list[dict], expected: Schedulability | None) -> None:
    assert pod_schedulability(pods) == expected


def _claim(name: str, phase: str, storage_class: str | None = None) -> dict:
    spec = {"storageClassName": storage_class} if storage_class else {}
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": phase}}


UNBOUND = Schedulability(
    False,
    "Unschedulable",
    "1 of 1 pods cannot be scheduled; pod demo-redis-x: 0/4 nodes are available: "
    "pod has unbound immediate PersistentVolumeClaims. preemption: 0/4 nodes are available.",
)


def test_pending_claims_are_named_with_the_storage_class_they_wait_for() -> None:
    assert waits_for_claims(UNBOUND)
    claims = [
        _claim("demo-redis-data", "Pending", "fast-ssd"),
        _claim("demo-features", "Pending"),
        _claim("demo-checkpoints", "Bound"),
    ]
    verdict = with_unbound_claims(UNBOUND, claims)
    assert verdict.reason == "UnboundPersistentVolumeClaims" and not verdict.schedulable
    assert verdict.message == UNBOUND.message + (
        "; claims not bound: demo-features (no StorageClass (the cluster default)), "
        "demo-redis-data (StorageClass fast-ssd)"
    )


def test_other_scheduling_failures_and_bound_claims_leave_the_verdict_alone() -> None:
    gpus = Schedulability(False, "Unschedulable", "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
    assert not waits_for_claims(gpus)
    assert with_unbound_claims(UNBOUND, [_claim("demo-features", "Bound")]) == UNBOUND
