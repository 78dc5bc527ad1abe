"""Reading chat JSONL: accepted schemas and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from specforge_trainer.data.chat_jsonl import DatasetError, read_chat_jsonl
from specforge_trainer.resources import builtin_dataset_path

GOOD = {"conversations": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_both_schemas_and_sharegpt_roles(tmp_path: Path) -> None:
    sharegpt = {"id": "x", "messages": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    samples = read_chat_jsonl(_write(tmp_path / "d.jsonl", [json.dumps(GOOD), "", json.dumps(sharegpt)]))
    assert [s.index for s in samples] == [0, 1]
    assert samples[1].sample_key == "x"
    assert [m["role"] for m in samples[1].messages] == ["user", "assistant"]


def test_malformed_line_is_reported_with_its_line_number(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps(GOOD), '{"conversations": [', json.dumps(GOOD)]
    )
    with pytest.raises(DatasetError, match=r"d\.jsonl:3: not valid JSON"):
        read_chat_jsonl(path)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"text": "no turns"}, "needs a non-empty 'conversations' or 'messages' list"),
        ({"messages": [{"role": "user", "content": "only a question"}]}, "has no assistant turn"),
        ({"messages": [{"role": "robot", "content": "x"}]}, r"turn 0: unknown role 'robot'"),
        ({"messages": [{"role": "assistant", "content": 3}]}, "content must be a string"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_records_say_what_is_wrong(tmp_path: Path, record: object, reason: str) -> None:
    path = _write(tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps(record)])
    with pytest.raises(DatasetError, match=rf"d\.jsonl:2.*{reason}"):
        read_chat_jsonl(path)


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is empty"):
        read_chat_jsonl(_write(tmp_path / "empty.jsonl", ["", "  "]))


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_chat_jsonl(tmp_path / "nope.jsonl")


def test_bundled_dataset_is_valid_and_unknown_builtin_is_refused() -> None:
    assert len(read_chat_jsonl(builtin_dataset_path("chat-mini"))) >= 400
    with pytest.raises(ValueError, match="unknown built-in dataset 'big'"):
        builtin_dataset_path("big")
