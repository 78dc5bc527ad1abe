"""``specforge eval`` on a briefly trained draft: one JSON object, lossless, acceptance within its bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from specforge_trainer.cli import main
from specforge_trainer.runtime import build_offline_runtime

pytestmark = pytest.mark.slow


def test_eval_reports_real_speculative_decoding_of_a_trained_draft(
    tmp_path: Path, make_manifest, cpu_context, capsys: pytest.CaptureFixture[str]
) -> None:
    run, manifest = make_manifest("evaluated", epochs=1, tttLength=3, learningRate=3e-3)
    out = tmp_path / "out"
    reports = build_offline_runtime(
        run, out_dir=out, feature_store_dir=tmp_path / "features", context=cpu_context
    ).train()
    capsys.readouterr()
    argv = ["eval", str(manifest), "--checkpoint", str(out), "--prompts", "3", "--max-new-tokens", "20"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identical_to_greedy"] is True and report["mismatched_prompts"] == []
    assert report["prompts"] == 3 and report["draft_steps"] == 3  # tttLength by default
    assert 0 <= report["acceptance_length"] <= 3
    assert 1 <= report["tokens_per_target_forward"] <= 4
    assert report["checkpoint"].endswith(f"epoch_0_step_{len(reports)}")
    last = reports[-10:]
    assert report["simulated_acceptance_length"] == pytest.approx(
        sum(r.acceptance_length for r in last) / len(last)
    )
    assert main([*argv, "--draft-steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "identical to greedy       yes" in text and "draft steps               2" in text


def test_eval_without_a_checkpoint_is_a_clear_error(
    tmp_path: Path, make_manifest, capsys: pytest.CaptureFixture[str]
) -> None:
    _, manifest = make_manifest("unevaluated")
    assert main(["eval", str(manifest), "--checkpoint", str(tmp_path / "none")]) == 2
    assert f"no draft checkpoint in {str(tmp_path / 'none')!r}" in capsys.readouterr().err
