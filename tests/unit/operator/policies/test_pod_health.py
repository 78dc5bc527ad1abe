"""Pods stuck on their image, their env's Secret or a crash loop → a PodsHealthy condition; API refusals
of a child → a ChildrenAccepted condition and a ChildRejected phase reason. Table-driven."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from specforge_api.status import Phase
from specforge_operator.policies.evaluate import evaluate_policies
from specforge_operator.policies.pod_health import PodHealth, pod_health
from specforge_operator.workloads.base import WorkloadState
from unit.operator.policies.test_evaluate import inputs


def waiting_pod(name: str, *reasons: str, phase: str = "Pending", message: str = "") -> dict[str, Any]:
    """A pod whose containers wait for ``reasons`` (empty string: running)."""
    statuses = [
        {"name": f"c{i}", "state": {"waiting": {"reason": r, "message": message}} if r else {"running": {}}}
        for i, r in enumerate(reasons)
    ]
    return {"metadata": {"name": name}, "status": {"phase": phase, "containerStatuses": statuses}}


PULL = 'Back-off pulling image "ghcr.io/x/trainer:nope"'
CASES = {
    "no pods": ([], None),
    "no container statuses yet": ([{"metadata": {"name": "a"}, "status": {"phase": "Pending"}}], None),
    "creating is not stuck": (
        [waiting_pod("a", "ContainerCreating")],
        PodHealth(True, "NoPodStuck", "no pod of 1 is stuck"),
    ),
    "image pull back-off, the kubelet's message kept": (
        [waiting_pod("a", ""), waiting_pod("b", "ImagePullBackOff", message=PULL)],
        PodHealth(
            False, "ImagePullBackOff", f"1 of 2 pods stuck; pod b container c0: ImagePullBackOff: {PULL}"
        ),
    ),
    "a missing Secret in envFrom": (
        [waiting_pod("a", "CreateContainerConfigError", message='secret "creds" not found')],
        PodHealth(
            False,
            "CreateContainerConfigError",
            '1 of 1 pods stuck; pod a container c0: CreateContainerConfigError: secret "creds" not found',
        ),
    ),
    "a crash loop in a running pod, first stuck pod by name": (
        [waiting_pod("b", "ErrImagePull"), waiting_pod("a", "", "CrashLoopBackOff", phase="Running")],
        PodHealth(False, "CrashLoopBackOff", "2 of 2 pods stuck; pod a container c1: CrashLoopBackOff"),
    ),
    "finished pods are not judged": (
        [waiting_pod("old", "ImagePullBackOff", phase="Failed"), waiting_pod("new", "")],
        PodHealth(True, "NoPodStuck", "no pod of 1 is stuck"),
    ),
}


@pytest.mark.parametrize(("pods", "expected"), CASES.values(), ids=CASES.keys())
def test_pod_health(pods: list[dict[str, Any]], expected: PodHealth | None) -> None:
    assert pod_health(pods) == expected


def _was(condition_type: str, status: str, reason: str, message: str) -> dict[str, Any]:
    """A run's status as the previous reconcile left it with one condition."""
    condition = {"type": condition_type, "status": status, "reason": reason, "message": message}
    return {"conditions": [{**condition, "lastTransitionTime": "2026-01-01T12:00:00Z"}]}


def _condition(outcome, condition_type: str):
    return next((c for c in outcome.conditions if c.type == condition_type), None)


def test_a_stuck_pod_is_a_condition_and_one_warning_per_episode_then_clears() -> None:
    stuck = PodHealth(False, "ImagePullBackOff", "1 of 1 pods stuck; pod p container c0: ImagePullBackOff")
    first = evaluate_policies(replace(inputs(), pod_health=stuck))
    condition = _condition(first, "PodsHealthy")
    assert (condition.status, condition.reason, condition.message) == (False, stuck.reason, stuck.message)
    assert [(e.type, e.reason) for e in first.events] == [("Warning", "ImagePullBackOff")]

    status = _was("PodsHealthy", "False", stuck.reason, stuck.message)
    again = evaluate_policies(replace(inputs(status=status), pod_health=stuck))
    assert _condition(again, "PodsHealthy").status is False and again.events == ()
    unjudged = evaluate_policies(inputs(status=status))  # pods not listed: the last verdict stands
    assert _condition(unjudged, "PodsHealthy").status is False
    healed = evaluate_policies(replace(inputs(status=status), pod_health=PodHealth(True, "NoPodStuck", "ok")))
    assert _condition(healed, "PodsHealthy").status is True and healed.events == ()


REFUSED = "PyTorchJob demo-trainer: 403 Forbidden: exceeded quota: gpus, requested: nvidia.com/gpu=8"


def test_a_refused_child_names_itself_in_the_phase_and_a_condition_with_one_event() -> None:
    outcome = evaluate_policies(replace(inputs(state=WorkloadState.ABSENT), rejected_children=(REFUSED,)))
    assert outcome.verdict is not None
    assert (outcome.verdict.phase, outcome.verdict.reason) == (Phase.PROVISIONING, "ChildRejected")
    assert REFUSED in outcome.verdict.message
    condition = _condition(outcome, "ChildrenAccepted")
    assert (condition.status, condition.reason, condition.message) == (False, "ChildRejected", REFUSED)
    assert [(e.type, e.reason, e.message) for e in outcome.events] == [("Warning", "ChildRejected", REFUSED)]

    status = _was("ChildrenAccepted", "False", "ChildRejected", REFUSED)
    again = evaluate_policies(
        replace(inputs(state=WorkloadState.ABSENT, status=status), rejected_children=(REFUSED,))
    )
    assert again.events == ()  # one event per episode, not one per resync
    accepted = evaluate_policies(inputs(state=WorkloadState.PENDING, status=status))
    assert accepted.verdict is None and _condition(accepted, "ChildrenAccepted").status is True


def test_runs_never_refused_carry_no_children_condition() -> None:
    outcome = evaluate_policies(inputs())
    assert _condition(outcome, "ChildrenAccepted") is None and _condition(outcome, "PodsHealthy") is None
