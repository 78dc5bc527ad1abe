"""Reading chat JSONL: accepted schemas, and bad lines set aside with their file, line and reason."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from specforge_trainer.data.chat_jsonl import DatasetError, read_chat_jsonl
from specforge_trainer.resources import BUILTIN_DATASETS, builtin_dataset_path

REPO_ROOT = Path(__file__).resolve().parents[3]
GOOD = {"conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_both_schemas_and_sharegpt_roles(tmp_path: Path) -> None:
    sharegpt = {"id": "x", "messages": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    samples = read_chat_jsonl(
        _write(tmp_path / "d.jsonl", [json.dumps(GOOD), "", json.dumps(sharegpt)])
    ).samples
    assert [s.index for s in samples] == [0, 1]
    assert samples[1].sample_key == "x"
    assert [m["role"] for m in samples[1].messages] == ["user", "assistant"]


def test_malformed_line_is_set_aside_with_its_line_number(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps(GOOD), '{"conversations": [', json.dumps(GOOD)]
    )
    parsed = read_chat_jsonl(path)
    assert [s.index for s in parsed.samples] == [0, 1, 3]  # later lines keep their own names
    assert [str(bad) for bad in parsed.bad] == [f"{path}:3: not valid JSON (Expecting value)"]


def test_tool_turns_and_tool_calls_pass_through(tmp_path: Path) -> None:
    call = [{"type": "function", "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]
    record = {
        "tools": [{"type": "function", "function": {"name": "add"}}],
        "messages": [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": None, "tool_calls": call},
            {"role": "tool", "content": "4", "name": "add"},
            {"role": "assistant", "content": "4."},
        ],
    }
    (sample,) = read_chat_jsonl(_write(tmp_path / "d.jsonl", [json.dumps(record)])).samples
    assert [m["role"] for m in sample.messages] == ["user", "assistant", "tool", "assistant"]
    assert sample.messages[1] == {"role": "assistant", "content": "", "tool_calls": call}
    assert sample.messages[2]["name"] == "add"
    assert sample.tools == tuple(record["tools"])


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"text": "no turns"}, "needs a non-empty 'conversations' or 'messages' list"),
        ({"messages": [{"role": "user", "content": "only a question"}]}, "has no assistant turn"),
        ({"messages": [{"role": "robot", "content": "x"}]}, r"turn 0: unknown role 'robot'"),
        ({"messages": [{"role": "assistant", "content": 3}]}, "content must be a string"),
        ({"messages": [{"role": "assistant", "content": None}]}, "content must be a string"),
        ({"messages": [{"role": "assistant", "content": "a"}], "tools": "add"}, "'tools' must be a list"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_records_say_what_is_wrong(tmp_path: Path, record: object, reason: str) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps(record)])
    parsed = read_chat_jsonl(path)
    assert len(parsed.samples) == 1
    (bad,) = parsed.bad
    assert bad.name == f"{path}:2"
    assert re.search(reason, bad.reason)


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is empty"):
        read_chat_jsonl(_write(tmp_path / "empty.jsonl", ["", "  "]))


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_chat_jsonl(tmp_path / "nope.jsonl")


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_bundled_datasets_are_valid(name: str) -> None:
    bundled = read_chat_jsonl(builtin_dataset_path(name))
    assert len(bundled.samples) >= 400 and not bundled.bad


def test_unknown_builtin_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown built-in dataset 'big'"):
        builtin_dataset_path("big")


def test_smol_chats_asks_what_its_prompt_script_writes_and_every_answer_is_there() -> None:
    # The README's reproduction: hack/smol_prompts.py's first N prompts, answered by the target.
    shipped = [json.loads(line) for line in builtin_dataset_path("smol-chats").read_text().splitlines()]
    written = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack" / "smol_prompts.py"), "--count", str(len(shipped))],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    prompts = [json.loads(line) for line in written]
    assert [r["id"] for r in shipped] == [p["id"] for p in prompts]
    for record, prompt in zip(shipped, prompts, strict=True):
        (user, answer) = record["conversations"]
        assert user == prompt["conversations"][0] and answer["role"] == "assistant" and answer["content"]
