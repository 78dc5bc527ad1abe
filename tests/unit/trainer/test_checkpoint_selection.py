"""Choosing the checkpoint to report and export from the run's evaluation ledger: lossless first, then the
best real acceptance, the later checkpoint on a tie; what is gone from disk is not a candidate; and the
status patch for the best so far (during training) against the final one."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from specforge_api.status import Evaluation
from specforge_trainer.reporting.kubernetes_status import qualification_patch
from specforge_trainer.speculative.evaluation import EvalReport, Mismatch
from specforge_trainer.speculative.qualification import EvaluationLedger, Qualification


def _report(folder: Path, acceptance: float, *, lossless: bool = True) -> EvalReport:
    folder.mkdir(parents=True, exist_ok=True)
    mismatches = [] if lossless else [Mismatch(0, 3, 11, 12, 0.01)]
    return EvalReport(
        checkpoint=str(folder),
        prompts=4,
        held_out_conversations=8,
        draft_steps=3,
        max_new_tokens=16,
        acceptance_length=acceptance,
        tokens_per_target_forward=1 + acceptance,
        position_acceptance=[0.5, 0.25, 0.1],
        identical_to_greedy=lossless,
        mismatched_prompts=[] if lossless else [0],
        mismatches=mismatches,
        generated_tokens=64,
        speculative_seconds=1.0,
        greedy_seconds=1.5,
        speedup=1.5,
        simulated_acceptance_length=None,
    )


def test_the_best_lossless_checkpoint_wins_and_a_tie_goes_to_the_later(tmp_path: Path) -> None:
    ledger = EvaluationLedger(tmp_path)
    ledger.record(_report(tmp_path / "epoch_0_step_10", 1.2))
    ledger.record(_report(tmp_path / "epoch_0_step_20", 3.0, lossless=False))
    ledger.record(_report(tmp_path / "epoch_1_step_30", 1.7))
    ledger.record(_report(tmp_path / "epoch_1_step_40", 1.7))
    best = ledger.best()
    assert best is not None and Path(best.checkpoint).name == "epoch_1_step_40"
    assert len(ledger.reports()) == 4


def test_a_report_round_trips_through_the_ledger_and_the_last_line_for_a_checkpoint_wins(
    tmp_path: Path,
) -> None:
    ledger = EvaluationLedger(tmp_path)
    first = _report(tmp_path / "epoch_0_step_10", 1.0, lossless=False)
    ledger.record(first)
    assert ledger.reports() == {first.checkpoint: first}
    again = replace(_report(tmp_path / "epoch_0_step_10", 2.0), speedup=2.0)  # a restarted pod measured it
    ledger.record(again)
    assert ledger.reports() == {again.checkpoint: again}


def test_checkpoints_gone_from_disk_are_not_candidates_and_clear_starts_over(tmp_path: Path) -> None:
    ledger = EvaluationLedger(tmp_path)
    ledger.record(_report(tmp_path / "epoch_0_step_10", 2.5))
    ledger.record(_report(tmp_path / "epoch_0_step_20", 1.0))
    (tmp_path / "epoch_0_step_10").rmdir()
    best = ledger.best()
    assert best is not None and Path(best.checkpoint).name == "epoch_0_step_20"
    assert len(ledger.reports()) == 2  # still counted as measured
    ledger.clear()
    assert ledger.best() is None and ledger.reports() == {}


def test_the_status_patch_names_the_best_so_far_and_only_the_final_one_ends_the_stage(tmp_path: Path) -> None:
    result = Qualification(_report(tmp_path / "epoch_0_step_20", 2.25), 2.0, checkpoints_compared=3)
    interim = qualification_patch(result, final=False)["status"]
    assert set(interim) == {"evaluation"}
    evaluation = Evaluation.model_validate(interim["evaluation"])  # the keys are the API's
    assert evaluation.checkpoints_compared == 3 and evaluation.acceptance_length == 2.25
    assert evaluation.checkpoint.endswith("epoch_0_step_20")
    final = qualification_patch(result)["status"]
    assert final["progress"]["stage"] == "Evaluated"
    assert "best of 3 checkpoints" in result.verdict() and ">= minAcceptanceLength 2" in result.verdict()
