"""Read chat JSONL: one conversation per line, under ``conversations`` or ``messages``.

Each turn is ``{"role": "system"|"user"|"assistant"|"tool", "content": str}`` (ShareGPT-style
``{"from": "human"|"gpt", "value": ...}`` is accepted too, since public chat sets use it). An assistant
turn that only calls tools may leave ``content`` null; the fields chat templates read for tool use
(``tool_calls``, ``name``, ``tool_call_id``, ``reasoning_content``) and a record's ``tools`` list are
passed through to the template. A line that cannot be parsed does not stop the read: it is returned as
a :class:`BadSample` naming its file and line, and the caller decides whether there are too many.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROLE_ALIASES = {
    "human": "user",
    "gpt": "assistant",
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
}
# Turn fields chat templates read besides role and content (tool use, reasoning traces).
_PASSED_THROUGH = ("tool_calls", "name", "tool_call_id", "reasoning_content")


class DatasetError(ValueError):
    """A malformed dataset file or sample; the message names the file and line."""


@dataclass(frozen=True)
class BadSample:
    """A conversation left out of training: where it is (``file:line`` or its key) and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


@dataclass(frozen=True)
class ChatSample:
    """One conversation; ``index`` is its position among the file's non-blank lines."""

    index: int
    sample_key: str
    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...] | None = None


@dataclass
class ChatFile:
    """The parsed conversations of a file and the lines that could not be parsed."""

    samples: list[ChatSample] = field(default_factory=list)
    bad: list[BadSample] = field(default_factory=list)


def _parse_turn(turn: object, where: str) -> dict[str, Any]:
    if not isinstance(turn, dict):
        raise DatasetError(f"{where}: each turn must be an object, got {type(turn).__name__}")
    role = turn.get("role", turn.get("from"))
    content = turn.get("content", turn.get("value"))
    if role not in _ROLE_ALIASES:
        raise DatasetError(f"{where}: unknown role {role!r} (expected system, user, assistant or tool)")
    if content is None and turn.get("tool_calls"):
        content = ""
    if not isinstance(content, str):
        raise DatasetError(f"{where}: turn content must be a string")
    message = {"role": _ROLE_ALIASES[role], "content": content}
    message.update({key: turn[key] for key in _PASSED_THROUGH if turn.get(key) is not None})
    return message


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
    tools = record.get("tools")
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise DatasetError(f"{where}: 'tools' must be a list of objects")
    sample_key = str(record.get("id", f"line-{index:06d}"))
    return ChatSample(
        index=index, sample_key=sample_key, messages=messages, tools=tuple(tools) if tools else None
    )


def read_chat_jsonl(path: str | Path) -> ChatFile:
    """All conversations in ``path``; raises :class:`DatasetError` for a missing or empty file only."""
    file_path = Path(path)
    if not file_path.is_file():
        raise DatasetError(f"dataset file {str(file_path)!r} does not exist")
    parsed = ChatFile()
    lines = 0
    with file_path.open(encoding="utf-8") as handle:
        for line_number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            where = f"{file_path}:{line_number}"
            try:
                parsed.samples.append(_parse_line(text, where, lines))
            except DatasetError as error:
                parsed.bad.append(BadSample(name=where, reason=str(error).removeprefix(f"{where}: ")))
            lines += 1
    if not lines:
        raise DatasetError(f"dataset file {str(file_path)!r} is empty")
    return parsed
