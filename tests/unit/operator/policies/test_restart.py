"""Gang restart decisions against the backoff limit, table-driven."""

from __future__ import annotations

import pytest
from specforge_operator.policies.restart import RestartAction, decide_restart

# (workload_failed, workload_uid, restarts, last_failed_uid, backoff_limit) → (action, restarts, recorded uid)
CASES = {
    "healthy workload: nothing to do": ((False, "w1", 0, None, 3), (RestartAction.NONE, 0, None)),
    "healthy after restarts keeps the count": ((False, "w3", 2, "w2", 3), (RestartAction.NONE, 2, "w2")),
    "first failure restarts": ((True, "w1", 0, None, 3), (RestartAction.RESTART, 1, "w1")),
    "a new failure after a restart counts again": (
        (True, "w2", 1, "w1", 3),
        (RestartAction.RESTART, 2, "w2"),
    ),
    "the same failure seen twice is not counted twice": (
        (True, "w2", 2, "w2", 3),
        (RestartAction.WAIT, 2, "w2"),
    ),
    "limit reached: give up": ((True, "w4", 3, "w3", 3), (RestartAction.GIVE_UP, 3, "w3")),
    "backoffLimit 0 fails on the first failure": ((True, "w1", 0, None, 0), (RestartAction.GIVE_UP, 0, None)),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
def test_decide_restart(given: tuple, expected: tuple) -> None:
    failed, uid, restarts, last_uid, limit = given
    decision = decide_restart(
        workload_failed=failed,
        workload_uid=uid,
        failure="pod r-master-0: Error (exit code 1)",
        restarts=restarts,
        last_failed_workload_uid=last_uid,
        backoff_limit=limit,
    )
    assert (decision.action, decision.restarts, decision.failed_workload_uid) == expected


def test_messages_name_the_count_the_limit_and_the_failed_pod() -> None:
    restart = decide_restart(
        workload_failed=True,
        workload_uid="w1",
        failure="pod r-worker-1: Error (exit code 1)",
        restarts=0,
        last_failed_workload_uid=None,
        backoff_limit=2,
    )
    assert restart.reason == "RestartingAllRanks"
    assert "restart 1 of at most 2" in restart.message and "r-worker-1" in restart.message
    give_up = decide_restart(
        workload_failed=True,
        workload_uid="w3",
        failure="",
        restarts=2,
        last_failed_workload_uid="w2",
        backoff_limit=2,
    )
    assert give_up.reason == "BackoffLimitExceeded"
    assert give_up.message == "a rank failed after 2 restarts (runPolicy.backoffLimit 2)"


def test_waiting_for_the_failed_workload_to_go_repeats_the_count_and_the_failed_pod() -> None:
    """Every reconcile until the failed workload is gone says the same: the restart already counted."""
    waiting = decide_restart(
        workload_failed=True,
        workload_uid="w1",
        failure="pod r-worker-1: Error (exit code 1)",
        restarts=1,
        last_failed_workload_uid="w1",
        backoff_limit=2,
    )
    assert waiting.reason == "RestartingAllRanks"
    assert waiting.message.startswith("restart 1 of at most 2: ") and waiting.message.endswith(
        ": pod r-worker-1: Error (exit code 1)"
    )


def test_a_trainer_that_found_its_store_emptied_fails_the_run_without_a_restart() -> None:
    failure = "pod demo-trainer-master-0: Error (exit code 2) error: MetadataStoreLost: the metadata store has no record"
    decision = decide_restart(
        workload_failed=True,
        workload_uid="w1",
        failure=failure,
        restarts=0,
        last_failed_workload_uid=None,
        backoff_limit=3,
    )
    assert (decision.action, decision.restarts, decision.reason) == (
        RestartAction.GIVE_UP,
        0,
        "MetadataStoreLost",
    )
    assert "cannot resume" in decision.message and failure in decision.message
