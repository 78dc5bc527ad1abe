"""Active and pre-running deadlines, table-driven."""

from __future__ import annotations

import pytest
from specforge_operator.policies.deadlines import (
    DEADLINE_EXCEEDED,
    PRE_RUNNING_DEADLINE_EXCEEDED,
    active_deadline_failure,
    pre_running_deadline_failure,
)
from unit.operator.policies.builders import at

# (deadline, start offset or None, resumed at, suspended now, now offset) → fails?
ACTIVE = {
    "no deadline": ((None, 0, None, False, 10_000), False),
    "not started": ((60, None, None, False, 10_000), False),
    "before the deadline": ((60, 0, None, False, 59), False),
    "at the deadline": ((60, 0, None, False, 60), True),
    "past the deadline": ((60, 0, None, False, 61), True),
    "suspended past the deadline": ((60, 0, None, True, 1000), False),
    # Like a batch Job: resuming restarts the clock, the suspended time is not counted.
    "resumed, within the deadline since": ((60, 0, 500, False, 559), False),
    "resumed, past the deadline since": ((60, 0, 500, False, 560), True),
}


@pytest.mark.parametrize(("given", "fails"), ACTIVE.values(), ids=ACTIVE.keys())
def test_active_deadline(given: tuple, fails: bool) -> None:
    deadline, start, resumed, suspended, now = given
    failure = active_deadline_failure(
        deadline_seconds=deadline,
        start_time=None if start is None else at(start),
        resume_time=None if resumed is None else at(resumed),
        suspended=suspended,
        now=at(now),
    )
    assert (failure is not None) == fails
    if failure:
        assert failure.reason == DEADLINE_EXCEEDED
        assert f"activeDeadlineSeconds {deadline}" in failure.message


# (deadline, workload created, running time, resumed at, suspended now, now) → fails?
PRE_RUNNING = {
    "no deadline": ((None, 0, None, None, False, 10_000), False),
    "no workload yet": ((30, None, None, None, False, 10_000), False),
    "waiting, within the deadline": ((30, 0, None, None, False, 29), False),
    "waiting, at the deadline": ((30, 0, None, None, False, 30), True),
    "waiting, past the deadline": ((30, 0, None, None, False, 31), True),
    "this workload ran": ((30, 0, 5, None, False, 1000), False),
    # Timestamps have one-second resolution: pods all running in the second their workload was created
    # is an ordinary fast start, not a workload that never ran.
    "this workload ran in the second it was created": ((30, 100, 100, None, False, 1000), False),
    "an earlier workload ran, this one never did": ((30, 100, 5, None, False, 131), True),
    "suspended (by the user or its queue)": ((30, 0, None, None, True, 1000), False),
    "admitted by its queue after an hour, within the deadline since": (
        (30, 0, None, 3600, False, 3629),
        False,
    ),
    "admitted by its queue after an hour, past the deadline since": ((30, 0, None, 3600, False, 3630), True),
    "resumed before the workload was created": ((30, 100, None, 50, False, 131), True),
}


@pytest.mark.parametrize(("given", "fails"), PRE_RUNNING.values(), ids=PRE_RUNNING.keys())
def test_pre_running_deadline(given: tuple, fails: bool) -> None:
    deadline, created, running, resumed, suspended, now = given
    failure = pre_running_deadline_failure(
        deadline_seconds=deadline,
        workload_created=None if created is None else at(created),
        running_time=None if running is None else at(running),
        resume_time=None if resumed is None else at(resumed),
        suspended=suspended,
        waiting_for="0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        now=at(now),
    )
    assert (failure is not None) == fails
    if failure:
        assert failure.reason == PRE_RUNNING_DEADLINE_EXCEEDED
        assert failure.message.endswith("3 Insufficient nvidia.com/gpu."), failure.message


def test_a_pre_running_failure_without_a_reason_says_so() -> None:
    failure = pre_running_deadline_failure(
        deadline_seconds=30,
        workload_created=at(0),
        running_time=None,
        resume_time=None,
        suspended=False,
        waiting_for="",
        now=at(45),
    )
    assert failure is not None
    assert failure.message == (
        "the trainer pods did not start within runPolicy.preRunningDeadlineSeconds 30 (waited 45 s): "
        "no reason reported"
    )
