"""Which runs a replica reconciles at once when it lists them (start-up, take-over, a re-listed watch).

On start-up and on a peering take-over kopf lists every run and every watched child. Reconciling all of
them at once (every run on resume, and again for each child whose last writer was a controller, e.g. a
Job's status) took about 20 s per 1,000 runs on two cores, and the runs that had really changed waited
behind the rest. Only two kinds of run can have news the last status does not show:

* its spec changed since the status was written (``observedGeneration`` lags ``generation``), or
* it is still in motion (pending, provisioning, running, restarting, or with no status yet): its
  workload may have started, finished or failed while no replica was watching.

A settled run (suspended by its spec, succeeded or failed) whose status matches its spec is left to the
resync loop (``SPECFORGE_RESYNC_SECONDS``). A child found by a listing is not news by itself (its run's
resume covers start-up and take-over; after a watch re-listed mid-life, the resync does): a child edited
by hand while no replica watched is restored at the next resync, not at once. Child events from a live
watch are news as before (see ``echoes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specforge_api.status import Phase

SETTLED_PHASES = frozenset({Phase.SUSPENDED.value, Phase.SUCCEEDED.value, Phase.FAILED.value})


def status_may_be_stale(run: Mapping[str, Any]) -> bool:
    """Whether a listed run may have news its status does not show yet."""
    status = run.get("status") or {}
    if status.get("observedGeneration") != (run.get("metadata") or {}).get("generation"):
        return True
    return status.get("phase") not in SETTLED_PHASES


def is_listing_event(event_type: str | None) -> bool:
    """kopf reports objects found by its initial list (start-up, take-over) with no event type."""
    return event_type is None
