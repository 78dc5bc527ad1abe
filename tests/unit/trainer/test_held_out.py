"""The held-out split: the dataset's last conversations never reach training, eval reads only them, and a
split that leaves nothing to train on, or too few prompts for eval, is refused before any model work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.manifests import minimal_run
from specforge_api import SpecForgeRun
from specforge_trainer.cli import EXIT_BAD_INPUT, main
from specforge_trainer.data.training_set import load_training_set
from specforge_trainer.models.target import describe_target
from specforge_trainer.preflight import check_eval_prompts
from specforge_trainer.speculative.evaluation import held_out_chats


def _chat(number: int) -> str:
    return json.dumps(
        {
            "id": f"chat-{number}",
            "messages": [
                {"role": "user", "content": f"question {number}"},
                {"role": "assistant", "content": f"answer {number}"},
            ],
        }
    )


def _dataset(tmp_path: Path, conversations: int, *, bad_line_at: int | None = None) -> Path:
    lines = [_chat(number) for number in range(conversations)]
    if bad_line_at is not None:
        lines.insert(bad_line_at, "{")
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(dataset: Path, **fields: Any) -> SpecForgeRun:
    return SpecForgeRun.model_validate(minimal_run("split", dataset={"path": str(dataset), **fields}))


@pytest.mark.parametrize("held_out", [0, 3])
def test_training_reads_all_but_the_last_conversations_and_eval_only_those(
    tmp_path: Path, held_out: int
) -> None:
    dataset = _dataset(tmp_path, 10, bad_line_at=4)  # an unreadable line does not shift the split
    tokenizer = describe_target(builtin="tiny-llama").tokenizer
    samples = load_training_set(dataset, tokenizer, max_length=64, max_bad_fraction=0.2, held_out=held_out)
    trained = [f"chat-{n}" for n in range(10 - held_out)]
    assert [sample.sample_key for sample in samples] == trained
    assert [sample.index for sample in samples] == list(range(10 - held_out))  # the schedule's numbering
    evaluated = [chat.sample_key for chat in held_out_chats(_run(dataset, heldOutConversations=held_out))]
    assert evaluated == [f"chat-{n}" for n in range(10 - held_out, 10)]


def test_the_default_holds_out_the_bundled_datasets_last_sixteen() -> None:
    run = SpecForgeRun.model_validate(minimal_run("default"))
    assert run.spec.dataset.held_out_conversations == 16
    assert [chat.index for chat in held_out_chats(run)] == list(range(480 - 16, 480))


def test_a_split_that_leaves_nothing_to_train_on_is_refused_before_features(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = _dataset(tmp_path, 5)
    manifest = tmp_path / "run.yaml"
    manifest.write_text(yaml.safe_dump(minimal_run("split", dataset={"path": str(dataset)})))
    assert main(["run", str(manifest), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert (
        "spec.dataset.heldOutConversations (16) leaves no conversation to train on: the dataset has 5 "
        "readable conversations" in capsys.readouterr().err
    )
    assert not (tmp_path / "out" / "features").exists()


def test_eval_answers_every_held_out_conversation_unless_told_fewer(tmp_path: Path) -> None:
    run = _run(_dataset(tmp_path, 10), heldOutConversations=4)
    assert check_eval_prompts(run, None) == 4
    assert check_eval_prompts(run, 2) == 2
    with pytest.raises(
        ValueError, match=r"--prompts 5 is outside 1\.\.4 \(spec\.dataset\.heldOutConversations"
    ):
        check_eval_prompts(run, 5)
    with pytest.raises(ValueError, match=r"--prompts 0 is outside"):
        check_eval_prompts(run, 0)


def test_eval_of_a_run_that_held_nothing_out_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "run.yaml"
    manifest.write_text(
        yaml.safe_dump(minimal_run("all", dataset={"builtin": "chat-mini", "heldOutConversations": 0}))
    )
    assert main(["eval", str(manifest), "--checkpoint", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "spec.dataset.heldOutConversations is 0: every conversation was trained on" in (
        capsys.readouterr().err
    )
