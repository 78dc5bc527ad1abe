"""Test-object builders for the policy tables: pods as the API server returns them, and times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def pod(
    name: str,
    *,
    phase: str = "Pending",
    scheduled: bool | None = None,
    reason: str = "Unschedulable",
    message: str = "",
    deleting: bool = False,
) -> dict[str, Any]:
    """A pod; ``scheduled`` None means the scheduler has not judged it (no PodScheduled condition)."""
    conditions = []
    if scheduled is not None:
        condition = {"type": "PodScheduled", "status": "True" if scheduled else "False"}
        if not scheduled:
            condition |= {"reason": reason, "message": message}
        conditions.append(condition)
    metadata: dict[str, Any] = {"name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {"metadata": metadata, "status": {"phase": phase, "conditions": conditions}}
