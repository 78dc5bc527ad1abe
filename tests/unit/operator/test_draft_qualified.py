"""DraftQualified: status.evaluation (written by the trainer) against spec.evaluation.minAcceptanceLength."""

from __future__ import annotations

from typing import Any

import pytest
from specforge_api import ManifestError, Phase, parse_run_manifest
from specforge_api.status import SpecForgeRunStatus
from specforge_operator.status import derive_status
from specforge_operator.status.derive import operator_fields
from specforge_operator.workloads.base import WorkloadState
from unit.operator.builders import build_run, run_manifest
from unit.operator.test_status_derivation import NOW, observed

EVALUATION = {"minAcceptanceLength": 2.0}


def measured(acceptance: float, *, lossless: bool = True) -> dict[str, Any]:
    return {
        "phase": "Running",
        "evaluation": {
            "checkpoint": "/checkpoints/epoch_9_step_590",
            "prompts": 16,
            "draftSteps": 7,
            "acceptanceLength": acceptance,
            "simulatedAcceptanceLength": 2.6,
            "tokensPerTargetForward": acceptance + 1,
            "positionAcceptance": [0.8, 0.6],
            "speedup": 1.7,
            "lossless": lossless,
        },
    }


def derive(status: dict[str, Any] | None, state: WorkloadState = WorkloadState.SUCCEEDED, **spec: Any):
    run = build_run(evaluation=EVALUATION, **spec)
    if status is not None:
        run = run.model_copy(update={"status": SpecForgeRunStatus.model_validate(status)})
    return derive_status(run, observed(state), NOW)


def condition(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == "DraftQualified"), None)


@pytest.mark.parametrize(
    ("acceptance", "lossless", "expected", "reason"),
    [
        (2.4, True, "True", "Qualified"),
        (2.0, True, "True", "Qualified"),
        (1.6, True, "False", "BelowMinAcceptanceLength"),
        (2.4, False, "False", "NotLossless"),
    ],
)
def test_the_condition_weighs_the_real_figure_against_the_threshold(
    acceptance: float, lossless: bool, expected: str, reason: str
) -> None:
    status, events = derive(measured(acceptance, lossless=lossless))
    found = condition(status)
    assert found is not None and (found["status"], found["reason"]) == (expected, reason)
    assert f"real acceptance length {acceptance:.2f}" in found["message"]
    assert "minAcceptanceLength 2" in found["message"]
    warned = [event for event in events if event.reason == reason and event.type == "Warning"]
    assert bool(warned) == (expected == "False")


def test_the_message_names_the_checkpoint_and_how_many_were_compared() -> None:
    interim = measured(2.4)
    interim["evaluation"]["checkpointsCompared"] = 3
    status, _ = derive(interim, WorkloadState.RUNNING)
    found = condition(status)
    assert found is not None and found["status"] == "True"
    assert "checkpoint epoch_9_step_590 (best of 3 measured)" in found["message"]


def test_no_condition_before_the_trainer_measured_while_running() -> None:
    status, _ = derive(None, WorkloadState.RUNNING)
    assert condition(status) is None


def test_a_finished_run_that_never_measured_is_not_qualified() -> None:
    status, _ = derive(None)
    found = condition(status)
    assert found is not None and (found["status"], found["reason"]) == ("False", "NotEvaluated")
    assert status["phase"] == Phase.SUCCEEDED.value


def test_no_condition_without_spec_evaluation() -> None:
    run = build_run()
    status, _ = derive_status(run, observed(WorkloadState.SUCCEEDED), NOW)
    assert condition(status) is None


def test_the_trainer_owns_evaluation_and_export() -> None:
    kept = operator_fields({"phase": "Running", "evaluation": {}, "export": {}, "progress": {}})
    assert kept == {"phase": "Running"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"evaluation": {}, "dataset": {"builtin": "chat-mini", "heldOutConversations": 0}}, "evaluation"),
        ({"evaluation": {"prompts": 20}}, "evaluation.prompts"),
        ({"export": {"to": "sglang"}}, "export"),
    ],
)
def test_manifest_rules_refuse_an_evaluation_that_cannot_run(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ManifestError, match=field):
        parse_run_manifest(run_manifest(**spec))


def test_an_evaluation_arriving_after_the_run_finished_still_qualifies_it() -> None:
    """The trainer patches status.evaluation just before its pod exits; the reconcile that sees the
    workload succeed may still hold the run without it. The condition follows the late figure."""
    finished, _ = derive(None)
    assert condition(finished)["reason"] == "NotEvaluated"
    late = {**finished, **measured(2.4), "phase": "Succeeded"}
    status, events = derive(late)
    found = condition(status)
    assert found is not None and (found["status"], found["reason"]) == ("True", "Qualified")
    assert status["phase"] == "Succeeded" and not events
    assert [c["type"] for c in status["conditions"]].count("DraftQualified") == 1
    assert {c["type"] for c in finished["conditions"]} == {c["type"] for c in status["conditions"]}
