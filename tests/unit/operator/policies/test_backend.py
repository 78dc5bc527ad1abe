"""A trainer backend the cluster does not serve: Pending with a reason, one warning, and recovery."""

from __future__ import annotations

from dataclasses import replace

from specforge_api.status import Phase
from specforge_operator.policies.backend import BACKEND_CONDITION, backend_availability
from specforge_operator.policies.evaluate import evaluate_policies
from specforge_operator.status import Observed, derive_status
from specforge_operator.workloads.base import WorkloadObservation, WorkloadState
from unit.operator.builders import build_run
from unit.operator.policies.test_evaluate import inputs, wire

JOBSET_API = ("jobset.x-k8s.io/v1alpha2", "JobSet")


def with_condition(status: str) -> dict:
    return {
        "conditions": [
            {
                "type": BACKEND_CONDITION,
                "status": status,
                "reason": "x",
                "message": "",
                "lastTransitionTime": wire(0),
            }
        ]
    }


def test_a_served_backend_adds_nothing_to_a_run_that_never_missed_it() -> None:
    assert backend_availability(build_run("dataflow_colocated"), None) == ((), (), None)


def test_an_unserved_backend_holds_the_run_pending_and_names_what_to_install() -> None:
    outcome = evaluate_policies(replace(inputs(state=WorkloadState.ABSENT), unserved_workload=JOBSET_API))
    assert outcome.verdict is not None
    assert (outcome.verdict.phase, outcome.verdict.reason) == (Phase.PENDING, "TrainerBackendNotInstalled")
    (condition,) = [c for c in outcome.conditions if c.type == BACKEND_CONDITION]
    assert condition.status is False
    assert "install JobSet" in condition.message and "spec.trainer.backend: pytorchjob" in condition.message
    assert [event.reason for event in outcome.events] == ["TrainerBackendNotInstalled"]
    again = evaluate_policies(
        replace(
            inputs(state=WorkloadState.ABSENT, status=with_condition("False")), unserved_workload=JOBSET_API
        )
    )
    assert again.events == (), "one warning per episode, not one per reconcile"


def test_the_condition_turns_true_once_the_backend_is_served() -> None:
    outcome = evaluate_policies(inputs(state=WorkloadState.PENDING, status=with_condition("False")))
    assert outcome.verdict is None
    (condition,) = [c for c in outcome.conditions if c.type == BACKEND_CONDITION]
    assert (condition.status, condition.reason) == (True, "TrainerBackendServed")


def test_restarts_a_workload_made_itself_are_the_runs_restarts() -> None:
    given = inputs(state=WorkloadState.RESTARTING, status={"restarts": 1})
    given = replace(
        given, gang_restarts=False, workload=WorkloadObservation(WorkloadState.RESTARTING, restarts=2)
    )
    outcome = evaluate_policies(given)
    assert outcome.status_fields["restarts"] == 2
    assert not outcome.delete_trainer_workload, "JobSet restarts its ranks; the operator deletes nothing"


def test_a_workload_restarting_its_ranks_puts_the_run_in_restarting() -> None:
    restarting = WorkloadObservation(WorkloadState.RESTARTING, "RestartingAllRanks", "restart 1 of at most 3")
    observed = Observed(
        store_ready=True, workload=restarting, producers=None, children=[], store_endpoint="redis://r:6379/0"
    )
    status, events = derive_status(build_run("dataflow_colocated"), observed, wire(5))
    assert status["phase"] == "Restarting"
    assert [(e.reason, e.message) for e in events] == [
        ("RestartingAllRanks", "Restarting: restart 1 of at most 3")
    ]
