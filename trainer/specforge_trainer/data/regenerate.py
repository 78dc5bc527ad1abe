"""Regenerate a chat dataset's assistant turns with the target itself (``spec.dataset.regenerate``).

A draft learns to predict what *this* target says next, so training answers written by another model
teach it the wrong distribution; answering every user turn with the target first is the largest single
lever on acceptance (upstream SpecForge's data preparation does it with a separate script). Each
assistant turn is answered given the conversation so far, whose earlier assistant turns are already the
target's own, so a multi-turn conversation stays one the target could have had. Conversations with
tool turns are copied unchanged: their assistant turns call tools, which a plain answer cannot replace.

Work unit and resume: conversations are answered in fixed batches (batch ``k`` holds conversations
``k*B .. k*B+B-1`` of the file), each written to its own file in ``<out>.parts/`` by a write to a
temporary name and a rename, so a batch is either done or not. A restart skips finished batches and
answers unfinished ones with the same composition, hence the same arithmetic: the merged file is
byte-identical to an uninterrupted stage's. Batches are sharded by ``k % num_shards == shard_index``
(the completion-index contract producers and ranks use for features); whoever finds every batch done
writes ``<out>`` (same bytes whoever does, published by rename).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from specforge_trainer.data.chat_jsonl import ChatSample, read_chat_jsonl
from specforge_trainer.models.target import TargetModel

ProgressCallback = Callable[[int, int], None]  # (conversations done, total)


@dataclass(frozen=True)
class RegenerateSettings:
    max_new_tokens: int = 256
    batch_size: int = 8
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class RegenerateResult:
    path: Path
    conversations: int
    answered_here: int  # conversations this call answered (0 when every batch was already done)
    complete: bool  # every shard's batches are done and ``path`` is written


def parts_dir(out: Path) -> Path:
    return out.with_name(out.name + ".parts")


def _batch_path(out: Path, batch: int) -> Path:
    return parts_dir(out) / f"batch-{batch:06d}.jsonl"


def _batches(count: int, batch_size: int) -> list[range]:
    return [range(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def _record(chat: ChatSample, messages: Sequence[dict[str, Any]]) -> str:
    record: dict[str, Any] = {"id": chat.sample_key, "conversations": list(messages)}
    if chat.tools:
        record["tools"] = list(chat.tools)
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def _regenerable(chat: ChatSample) -> bool:
    return not chat.tools and all(
        m["role"] in ("system", "user", "assistant") and "tool_calls" not in m for m in chat.messages
    )


class _Answerer:
    """Batched generation with the target: left-padded prompts, greedy unless a temperature is set."""

    def __init__(self, target: TargetModel, settings: RegenerateSettings) -> None:
        self.target, self.settings = target, settings
        tokenizer = target.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.stop_ids = _stop_ids(target)

    def answer(self, conversations: Sequence[Sequence[dict[str, Any]]], batch: int) -> list[str]:
        tokenizer = self.target.tokenizer
        prompts = [
            tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
            for messages in conversations
        ]
        encoded = [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, ids in enumerate(encoded):
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention[row, width - len(ids) :] = 1
        sampling: dict[str, Any] = {"do_sample": False}
        if self.settings.temperature > 0:
            # Seeded per batch: a resumed batch draws the same samples as the first attempt did.
            torch.manual_seed(self.settings.seed * 1_000_003 + batch)
            sampling = {
                "do_sample": True,
                "temperature": self.settings.temperature,
                "top_p": self.settings.top_p,
            }
        device = self.target.device
        with torch.no_grad():
            generate: Callable[..., torch.Tensor] = getattr(self.target.model, "generate")  # noqa: B009
            output = generate(
                input_ids=input_ids.to(device),
                attention_mask=attention.to(device),
                max_new_tokens=self.settings.max_new_tokens,
                eos_token_id=self.stop_ids,
                pad_token_id=self.pad_id,
                top_k=None,
                **sampling,
            )
        answers = []
        for row in output[:, width:].tolist():
            tokens = []
            for token in row:
                if token in self.stop_ids:
                    break
                tokens.append(token)
            answers.append(str(tokenizer.decode(tokens, skip_special_tokens=True)).strip())
        return answers


def _stop_ids(target: TargetModel) -> list[int]:
    """Token ids that end an answer: the model's EOS id(s) and the template's end-of-turn token."""
    ids: set[int] = set()
    eos = target.model.generation_config.eos_token_id
    ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if target.tokenizer.eos_token_id is not None:
        ids.add(target.tokenizer.eos_token_id)
    return sorted(ids)


def _regenerate_batch(chats: Sequence[ChatSample], answerer: _Answerer, batch: int) -> list[str]:
    """Answer every assistant turn of ``chats``, turn by turn across the batch."""
    histories: list[list[dict[str, Any]]] = [[] for _ in chats]
    cursors = [0] * len(chats)
    pending = [i for i, chat in enumerate(chats) if _regenerable(chat)]
    while pending:
        # Copy each conversation up to its next assistant turn, then answer that turn for all at once.
        asking = []
        for i in pending:
            messages = chats[i].messages
            while cursors[i] < len(messages) and messages[cursors[i]]["role"] != "assistant":
                histories[i].append(dict(messages[cursors[i]]))
                cursors[i] += 1
            if cursors[i] < len(messages):
                asking.append(i)
        if not asking:
            break
        for i, answer in zip(asking, answerer.answer([histories[i] for i in asking], batch), strict=True):
            histories[i].append({"role": "assistant", "content": answer})
            cursors[i] += 1
        pending = asking
    return [
        _record(chat, histories[i]) if _regenerable(chat) else _record(chat, chat.messages)
        for i, chat in enumerate(chats)
    ]


def _my_batches(batches: Sequence[range], shard_index: int, num_shards: int) -> Iterator[int]:
    return (k for k in range(len(batches)) if k % num_shards == shard_index)


def regenerate_dataset(
    source: Path,
    out: Path,
    target: TargetModel,
    settings: RegenerateSettings,
    *,
    shard_index: int = 0,
    num_shards: int = 1,
    progress: ProgressCallback | None = None,
) -> RegenerateResult:
    """Answer this shard's unfinished batches of ``source``; write ``out`` once every batch is done."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index {shard_index} is outside 0..{num_shards - 1}")
    chats = read_chat_jsonl(source).samples
    batches = _batches(len(chats), settings.batch_size)
    parts_dir(out).mkdir(parents=True, exist_ok=True)
    answerer = _Answerer(target, settings)
    done = sum(len(batches[k]) for k in range(len(batches)) if _batch_path(out, k).is_file())
    answered = 0
    if progress:
        progress(done, len(chats))
    for k in _my_batches(batches, shard_index, num_shards):
        if _batch_path(out, k).is_file():
            continue
        lines = _regenerate_batch([chats[i] for i in batches[k]], answerer, k)
        _write_atomically(_batch_path(out, k), "".join(line + "\n" for line in lines))
        answered += len(batches[k])
        done += len(batches[k])
        if progress:
            progress(done, len(chats))
    complete = merge_if_complete(out, len(batches))
    return RegenerateResult(path=out, conversations=len(chats), answered_here=answered, complete=complete)


def finished_conversations(out: Path, conversations: int, batch_size: int) -> int:
    """Conversations in batches some process has finished (the merged file counts as all of them)."""
    if out.is_file():
        return conversations
    return sum(
        len(b) for k, b in enumerate(_batches(conversations, batch_size)) if _batch_path(out, k).is_file()
    )


def merge_if_complete(out: Path, batch_count: int) -> bool:
    """Write ``out`` from the batch files when all exist; True when ``out`` is there."""
    if out.is_file():
        return True
    parts = [_batch_path(out, k) for k in range(batch_count)]
    if not all(part.is_file() for part in parts):
        return False
    _write_atomically(out, "".join(part.read_text(encoding="utf-8") for part in parts))
    return True
