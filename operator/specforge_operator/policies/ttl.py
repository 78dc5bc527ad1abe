"""``runPolicy.ttlSecondsAfterFinished``: when a finished run (and so, by ownership, its children) is deleted.

The run itself is deleted, not only its workload: a finished run left behind keeps its store, PVCs and
Secrets. Checked on every reconcile of a finished run, so the delay is accurate to the resync interval.
"""

from __future__ import annotations

from datetime import datetime


def ttl_expired(*, ttl_seconds: int | None, completion_time: datetime | None, now: datetime) -> bool:
    if ttl_seconds is None or completion_time is None:
        return False
    return (now - completion_time).total_seconds() >= ttl_seconds
