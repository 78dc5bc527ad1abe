"""Which child events are news: a child event is our own echo when the operator itself wrote it last.

Every apply the operator makes comes back as a watch event on the child; reconciling the parent again for
it would only re-apply what was just applied. A child deleted, written by a controller (status updates of
a Job, PyTorchJob or Deployment) or edited by hand is news and triggers a reconcile of its run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specforge_operator.render.meta import FIELD_MANAGER


def is_own_echo(event_type: str | None, child: Mapping[str, Any]) -> bool:
    if event_type == "DELETED":
        return False
    entries = (child.get("metadata") or {}).get("managedFields") or []
    stamped = [entry for entry in entries if entry.get("time")]
    if not stamped:
        return False
    latest = max(entry["time"] for entry in stamped)
    # Timestamps have one-second resolution: any other writer within the latest second makes it news.
    return all(entry.get("manager") == FIELD_MANAGER for entry in stamped if entry["time"] == latest)
