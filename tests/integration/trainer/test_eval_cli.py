"""``specforge eval`` on a briefly trained draft: one JSON object, lossless, acceptance within its bounds,
measured on held-out conversations that training never featurised; a non-lossless result fails the
command unless allowed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from _support.multiprocess_runs import HELD_OUT
from safetensors.torch import load_file
from specforge_trainer.build import build_offline_trainer
from specforge_trainer.cli import EXIT_NOT_LOSSLESS, main
from specforge_trainer.data.chat_jsonl import read_chat_jsonl
from specforge_trainer.data.tokenize import tokenize_chats
from specforge_trainer.models.target import describe_target
from specforge_trainer.speculative import evaluation

pytestmark = pytest.mark.slow


def test_eval_reports_real_speculative_decoding_of_a_trained_draft(
    tmp_path: Path, make_manifest, cpu_context, capsys: pytest.CaptureFixture[str]
) -> None:
    run, manifest = make_manifest("evaluated", epochs=1, tttLength=3, learningRate=3e-3)
    out = tmp_path / "out"
    reports = build_offline_trainer(
        run, out_dir=out, feature_store_dir=tmp_path / "features", context=cpu_context
    ).train()
    capsys.readouterr()
    argv = ["eval", str(manifest), "--checkpoint", str(out), "--prompts", "3", "--max-new-tokens", "20"]
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identical_to_greedy"] is True and report["mismatched_prompts"] == []
    assert report["prompts"] == 3 and report["held_out_conversations"] == HELD_OUT
    assert report["draft_steps"] == 3  # tttLength by default
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
    assert f"prompts x new tokens      3 of {HELD_OUT} held-out" in text


def test_training_featurises_exactly_the_conversations_before_the_held_out_ones(
    tmp_path: Path, make_manifest, small_dataset: Path, cpu_context
) -> None:
    run, _ = make_manifest("split", epochs=1, maxSteps=1)
    features = tmp_path / "features"
    build_offline_trainer(run, out_dir=tmp_path / "out", feature_store_dir=features, context=cpu_context)
    chats = read_chat_jsonl(small_dataset).samples
    held_out = evaluation.held_out_chats(run)
    assert (
        [chat.index for chat in held_out] == list(range(48, 48 + HELD_OUT)) == [c.index for c in chats[48:]]
    )
    tokenizer = describe_target(builtin="tiny-llama").tokenizer
    trained, _ = tokenize_chats(chats[:48], tokenizer, run.spec.training.max_length)
    stored = sorted(features.glob("*.safetensors"))
    assert len(stored) == len(trained) == 48  # of the 52 conversations in the file
    for path, sample in zip(stored, trained, strict=True):
        assert torch.equal(load_file(path)["input_ids"], sample.input_ids), path.name


def test_eval_fails_when_the_output_is_not_greedys_unless_allowed(
    tmp_path: Path, make_manifest, cpu_context, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    run, manifest = make_manifest("lossy", epochs=1, maxSteps=2, tttLength=3)
    out = tmp_path / "out"
    build_offline_trainer(
        run, out_dir=out, feature_store_dir=tmp_path / "features", context=cpu_context
    ).train()
    real = evaluation.speculative_decode

    def first_token_off(*args, **kwargs):  # what a decoding bug (or a bf16 near-tie) would return
        decoded = real(*args, **kwargs)
        return dataclasses.replace(decoded, tokens=[decoded.tokens[0] + 1, *decoded.tokens[1:]])

    monkeypatch.setattr(evaluation, "speculative_decode", first_token_off)
    capsys.readouterr()
    argv = ["eval", str(manifest), "--checkpoint", str(out), "--prompts", "2", "--max-new-tokens", "6"]
    assert main(argv) == EXIT_NOT_LOSSLESS
    captured = capsys.readouterr()
    assert "identical to greedy       NO: prompt 0 at token 0" in captured.out
    assert "speculative decoding differs from greedy decoding on prompts [0, 1]" in captured.err
    assert main([*argv, "--allow-mismatch", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identical_to_greedy"] is False and report["mismatched_prompts"] == [0, 1]
    assert [m["position"] for m in report["mismatches"]] == [0, 0]
    assert all(m["top2_logit_margin"] >= 0 for m in report["mismatches"])


def test_eval_without_a_checkpoint_is_a_clear_error(
    tmp_path: Path, make_manifest, capsys: pytest.CaptureFixture[str]
) -> None:
    _, manifest = make_manifest("unevaluated")
    assert main(["eval", str(manifest), "--checkpoint", str(tmp_path / "none")]) == 2
    assert f"no draft checkpoint in {str(tmp_path / 'none')!r}" in capsys.readouterr().err
