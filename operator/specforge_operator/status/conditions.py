"""metav1.Condition bookkeeping: a condition's lastTransitionTime moves only when its status changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConditionUpdate:
    type: str
    status: bool
    reason: str
    message: str = ""


def merge_conditions(
    previous: list[dict[str, Any]], updates: list[ConditionUpdate], *, now: str, generation: int | None
) -> list[dict[str, Any]]:
    """The new condition list: ``updates`` in order, keeping transition times whose status is unchanged."""
    by_type = {condition.get("type"): condition for condition in previous}
    merged = []
    for update in updates:
        status = "True" if update.status else "False"
        old = by_type.get(update.type)
        transition = old["lastTransitionTime"] if old and old.get("status") == status else now
        condition = {
            "type": update.type,
            "status": status,
            "reason": update.reason,
            "message": update.message,
            "lastTransitionTime": transition,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        merged.append(condition)
    return merged
