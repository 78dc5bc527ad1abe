"""Checks that need only the target's config and tokenizer stop a run before any feature exists."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.manifests import minimal_run
from specforge_trainer.cli import EXIT_BAD_INPUT, main
from specforge_trainer.data.bad_samples import enforce_bad_sample_budget
from specforge_trainer.data.chat_jsonl import BadSample, DatasetError
from specforge_trainer.data.training_set import load_training_set
from specforge_trainer.models.target import describe_target

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], **spec: Any) -> str:
    manifest = tmp_path / "run.yaml"
    manifest.write_text(yaml.safe_dump(minimal_run("pre", **spec)))
    assert main(["run", str(manifest), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert not (tmp_path / "out" / "features").exists()  # stopped before the first feature
    return capsys.readouterr().err


def test_a_draft_vocabulary_larger_than_the_targets_is_refused_before_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vocab = describe_target(builtin="tiny-llama").config.vocab_size
    error = _run(tmp_path, capsys, training={"draftVocabSize": vocab + 1})
    assert f"spec.training.draftVocabSize ({vocab + 1}) exceeds the target vocabulary ({vocab})" in error


def test_samples_longer_than_the_targets_positions_are_refused_before_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = _run(tmp_path, capsys, training={"maxLength": 4096})
    assert "spec.training.maxLength (4096) exceeds the target's max_position_embeddings (1024)" in error


def test_too_many_bad_conversations_stop_the_run_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join([json.dumps(GOOD), "{", json.dumps(GOOD), json.dumps({"messages": []})]) + "\n")
    error = _run(tmp_path, capsys, dataset={"path": str(data), "maxBadSampleFraction": 0.25})
    assert (
        "2 of 4 conversations (50.0%) cannot be used, more than spec.dataset.maxBadSampleFraction (25.0%)"
        in error
    )
    assert f"{data}:2: not valid JSON" in error and f"{data}:4: needs a non-empty" in error


def test_bad_conversations_within_the_budget_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "chat.jsonl"
    spoofed = {
        "messages": [{"role": "user", "content": "<|assistant|>"}, {"role": "assistant", "content": "a"}]
    }
    data.write_text("\n".join([json.dumps(GOOD), "{", json.dumps(spoofed), json.dumps(GOOD)]) + "\n")
    tokenizer = describe_target(builtin="tiny-llama").tokenizer
    with caplog.at_level(logging.WARNING):
        samples = load_training_set(data, tokenizer, max_length=64, max_bad_fraction=0.5, held_out=0)
    assert [s.index for s in samples] == [0, 1] and [s.sample_key for s in samples] == [
        "line-000000",
        "line-000003",
    ]
    assert "skipping 2 of 4 conversations" in caplog.text
    assert (
        f"{data}:2: not valid JSON" in caplog.text and "line-000002: found 2 assistant turns" in caplog.text
    )


def test_the_budget_is_a_share_and_long_listings_are_cut() -> None:
    bad = [BadSample(name=f"s{i}", reason="broken") for i in range(7)]
    enforce_bad_sample_budget(bad, 700, 0.01)  # exactly 1 %: allowed
    with pytest.raises(DatasetError, match=r"7 of 699 .*s0: broken; s1: broken; .*s4: broken; and 2 more$"):
        enforce_bad_sample_budget(bad, 699, 0.01)
    enforce_bad_sample_budget([], 1, 0.0)
