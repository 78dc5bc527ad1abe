"""The operator's own counters, kept where only the operator writes: an annotation on the run.

The trainer's Role may patch the run's status (that is how its progress gets there), so a status field
the operator reads back could have been rewritten by a trainer, whose image and ServiceAccount the run's
author picks: ``restarts`` against ``backoffLimit``, the start and resume times against the deadlines,
the phase. The operator also writes those fields into an annotation of the run object, which the
trainer's credentials cannot patch, and when it has no copy of its own in memory (after a restart or a
take-over) it takes them from there, not from the status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

LEDGER_ANNOTATION = "specforge.io/operator-status"
GUARDED_FIELDS = (
    "phase",
    "restarts",
    "lastFailedWorkloadUid",
    "startTime",
    "runningTime",
    "resumeTime",
    "completionTime",
)


def ledger_entry(status: Mapping[str, Any]) -> str:
    """The annotation's value for an operator-written status (wire form)."""
    kept = {key: status[key] for key in GUARDED_FIELDS if key in status}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def trusted_status(status: Mapping[str, Any], entry: str | None) -> dict[str, Any]:
    """``status`` with the guarded fields as the operator last recorded them. A run with no entry yet (or
    one that does not parse) keeps its status: the operator has nothing better."""
    try:
        kept = json.loads(entry) if entry else None
    except ValueError:
        kept = None
    if not isinstance(kept, dict):
        return dict(status)
    unguarded = {key: value for key, value in status.items() if key not in GUARDED_FIELDS}
    return {**unguarded, **{key: kept[key] for key in GUARDED_FIELDS if key in kept}}
