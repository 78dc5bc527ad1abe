"""Gang restarts: when one rank fails, every rank restarts together, counted against the backoff limit.

Restarting only the failed pod leaves the others blocked in a collective that will never complete, so
the trainer workload is rendered to fail as a whole on the first failed rank (``backoffLimit: 0``,
``restartPolicy: Never``), and this policy decides what follows: delete the whole workload so it is
recreated (each rank resumes from the newest checkpoint; the durable store returns acks newer than it to
pending), or, once ``runPolicy.backoffLimit`` restarts are spent, fail the run with
``BackoffLimitExceeded``. The failed workload's uid is recorded with the count, so a decision repeated by
a second reconcile (or after an operator restart) never counts one failure twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from specforge_api.pod_contract import STORE_LOST_REASON

BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
RESTARTING_REASON = "RestartingAllRanks"


class RestartAction(StrEnum):
    NONE = "None"  # the workload has not failed
    RESTART = "Restart"  # delete the failed workload now; the next reconcile recreates it
    WAIT = "Wait"  # this failure was already counted; its workload is being removed
    GIVE_UP = "GiveUp"  # backoffLimit restarts are spent: the run fails


@dataclass(frozen=True)
class RestartDecision:
    action: RestartAction
    restarts: int
    failed_workload_uid: str | None
    reason: str = ""
    message: str = ""


def decide_restart(
    *,
    workload_failed: bool,
    workload_uid: str | None,
    failure: str,
    restarts: int,
    last_failed_workload_uid: str | None,
    backoff_limit: int,
) -> RestartDecision:
    """What to do about the trainer workload, given the restarts already made for this run."""
    if not workload_failed:
        return RestartDecision(RestartAction.NONE, restarts, last_failed_workload_uid)
    detail = f": {failure}" if failure else ""
    if (
        STORE_LOST_REASON in failure
    ):  # the trainer's own verdict (MetadataStoreLost): no restart brings the data back
        return RestartDecision(
            RestartAction.GIVE_UP,
            restarts,
            last_failed_workload_uid,
            STORE_LOST_REASON,
            f"the metadata store lost the run's acked samples, so the run cannot resume{detail}",
        )
    if workload_uid is not None and workload_uid == last_failed_workload_uid:
        return RestartDecision(
            RestartAction.WAIT,
            restarts,
            last_failed_workload_uid,
            RESTARTING_REASON,
            f"restart {restarts} of at most {backoff_limit}: removing every rank of the failed workload{detail}",
        )
    if restarts >= backoff_limit:
        return RestartDecision(
            RestartAction.GIVE_UP,
            restarts,
            last_failed_workload_uid,
            BACKOFF_LIMIT_EXCEEDED,
            f"a rank failed after {restarts} restarts (runPolicy.backoffLimit {backoff_limit}){detail}",
        )
    return RestartDecision(
        RestartAction.RESTART,
        restarts + 1,
        workload_uid,
        RESTARTING_REASON,
        f"restart {restarts + 1} of at most {backoff_limit}: a rank failed, restarting every rank "
        f"from the newest checkpoint{detail}",
    )
