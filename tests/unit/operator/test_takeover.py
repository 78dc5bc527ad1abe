"""Which listed runs a (re)starting replica reconciles at once: spec changed, or not settled."""

from __future__ import annotations

from typing import Any

import pytest
from specforge_api.status import Phase
from specforge_operator.takeover import is_listing_event, status_may_be_stale


def _run(generation: int, status: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "r", "generation": generation}}
    if status is not None:
        body["status"] = status
    return body


@pytest.mark.parametrize("phase", [Phase.SUSPENDED, Phase.SUCCEEDED, Phase.FAILED])
def test_settled_run_in_step_with_its_spec_waits_for_the_resync(phase: Phase) -> None:
    assert not status_may_be_stale(_run(3, {"observedGeneration": 3, "phase": phase.value}))


@pytest.mark.parametrize("phase", [Phase.SUSPENDED, Phase.SUCCEEDED, Phase.FAILED, Phase.RUNNING])
def test_spec_changed_since_the_status_is_reconciled(phase: Phase) -> None:
    assert status_may_be_stale(_run(4, {"observedGeneration": 3, "phase": phase.value}))


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.PROVISIONING, Phase.RUNNING, Phase.RESTARTING])
def test_run_in_motion_is_reconciled_its_workload_may_have_moved_on(phase: Phase) -> None:
    assert status_may_be_stale(_run(3, {"observedGeneration": 3, "phase": phase.value}))


@pytest.mark.parametrize("status", [None, {}, {"observedGeneration": 1}])
def test_run_never_or_half_reconciled_is_reconciled(status: dict[str, Any] | None) -> None:
    assert status_may_be_stale(_run(1, status))


@pytest.mark.parametrize(("event_type", "listed"), [(None, True), ("ADDED", False), ("MODIFIED", False)])
def test_listing_events_have_no_type(event_type: str | None, listed: bool) -> None:
    assert is_listing_event(event_type) is listed
