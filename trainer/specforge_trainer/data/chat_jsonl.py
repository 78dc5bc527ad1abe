"""Read chat JSONL: one conversation per line, under ``conversations`` or ``messages``.

Each turn is ``{"role": "system"|"user"|"assistant", "content": str}`` (ShareGPT-style
``{"from": "human"|"gpt", "value": ...}`` is accepted too, since public chat sets use it).
Every defect is reported with its file and line number at read time, before any model work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

_ROLE_ALIASES = {
    "human": "user",
    "gpt": "assistant",
    "user": "user",
    "assistant": "assistant",
    "system": "system",
}


class DatasetError(ValueError):
    """A malformed dataset file; the message names the file and line."""


@dataclass(frozen=True)
class ChatSample:
    """One conversation; ``index`` is its position among the file's non-blank lines."""

    index: int
    sample_key: str
    messages: tuple[dict[str, str], ...]


def _parse_turn(turn: object, where: str) -> dict[str, str]:
    if not isinstance(turn, dict):
        raise DatasetError(f"{where}: each turn must be an object, got {type(turn).__name__}")
    role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if role not in _ROLE_ALIASES:
        raise DatasetError(f"{where}: unknown role {role!r} (expected system, user or assistant)")
    if not isinstance(content, str):
        raise DatasetError(f"{where}: turn content must be a string")
    return {"role": _ROLE_ALIASES[role], "content": content}


def _parse_line(text: str, where: str, index: int) -> ChatSample:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: each line must be a JSON object")
    turns = record.get("conversations", record.get("messages"))
    if not isinstance(turns, list) or not turns:
        raise DatasetError(f"{where}: needs a non-empty 'conversations' or 'messages' list")
    messages = tuple(_parse_turn(turn, f"{where}, turn {number}") for number, turn in enumerate(turns))
    if not any(message["role"] == "assistant" for message in messages):
        raise DatasetError(f"{where}: has no assistant turn, so nothing to train on")
    sample_key = str(record.get("id", f"line-{index:06d}"))
    return ChatSample(index=index, sample_key=sample_key, messages=messages)


def read_chat_jsonl(path: str | Path) -> list[ChatSample]:
    """All conversations in ``path``; raises :class:`DatasetError` for a missing, empty or bad file."""
    file_path = Path(path)
    if not file_path.is_file():
        raise DatasetError(f"dataset file {str(file_path)!r} does not exist")
    samples: list[ChatSample] = []
    with file_path.open(encoding="utf-8") as handle:
        for line_number, text in enumerate(handle, start=1):
            if text.strip():
                samples.append(_parse_line(text, f"{file_path}:{line_number}", len(samples)))
    if not samples:
        raise DatasetError(f"dataset file {str(file_path)!r} is empty")
    return samples
