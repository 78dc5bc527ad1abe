"""Pods → Schedulable condition, table-driven."""

from __future__ import annotations

import pytest
from specforge_operator.policies.schedulability import Schedulability, pod_schedulability
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
