"""Run deadlines: ``activeDeadlineSeconds`` and ``preRunningDeadlineSeconds``.

The active deadline counts from the run's ``startTime`` (its first workload), across gang restarts, so
restarting cannot extend it. The pre-running deadline counts from the current workload's creation until
its pods are first all running, and fails the run with the reason they are not (the scheduler's message).

Suspended time does not count, as for a batch Job: while the run is suspended (``spec.suspend``, or a
queue such as Kueue holding its workload) neither deadline runs, and once it resumes both count from the
resumption (``resumeTime``), not from before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

DEADLINE_EXCEEDED = "DeadlineExceeded"
PRE_RUNNING_DEADLINE_EXCEEDED = "PreRunningDeadlineExceeded"


@dataclass(frozen=True)
class DeadlineFailure:
    reason: str
    message: str


def _latest(*times: datetime | None) -> datetime | None:
    present = [time for time in times if time is not None]
    return max(present) if present else None


def active_deadline_failure(
    *,
    deadline_seconds: int | None,
    start_time: datetime | None,
    resume_time: datetime | None,
    suspended: bool,
    now: datetime,
) -> DeadlineFailure | None:
    counted_from = _latest(start_time, resume_time) if start_time is not None else None
    if deadline_seconds is None or counted_from is None or suspended:
        return None
    active = (now - counted_from).total_seconds()
    if active < deadline_seconds:
        return None
    return DeadlineFailure(
        DEADLINE_EXCEEDED,
        f"the run has been active {active:.0f} s, past runPolicy.activeDeadlineSeconds {deadline_seconds}",
    )


def pre_running_deadline_failure(
    *,
    deadline_seconds: int | None,
    workload_created: datetime | None,
    running_time: datetime | None,
    resume_time: datetime | None,
    suspended: bool,
    waiting_for: str,
    now: datetime,
) -> DeadlineFailure | None:
    """``running_time``: when the run's workload was last seen with every pod running (None: never)."""
    if deadline_seconds is None or workload_created is None or suspended:
        return None
    if running_time is not None and running_time >= workload_created:
        return None  # this workload's pods have started
    waited = (now - max(workload_created, resume_time or workload_created)).total_seconds()
    if waited < deadline_seconds:
        return None
    return DeadlineFailure(
        PRE_RUNNING_DEADLINE_EXCEEDED,
        f"the trainer pods did not start within runPolicy.preRunningDeadlineSeconds {deadline_seconds} "
        f"(waited {waited:.0f} s): {waiting_for or 'no reason reported'}",
    )
