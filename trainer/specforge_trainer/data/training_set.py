"""A run's training conversations: read, held-out ones set apart, tokenized with the target's template,
bad ones skipped or fatal."""

from __future__ import annotations

from pathlib import Path

from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from specforge_trainer.data.bad_samples import enforce_bad_sample_budget
from specforge_trainer.data.chat_jsonl import read_chat_jsonl
from specforge_trainer.data.held_out import require_training_left, split_held_out
from specforge_trainer.data.tokenize import TokenizedSample, tokenize_chats


def load_training_set(
    path: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    max_bad_fraction: float,
    held_out: int,
) -> list[TokenizedSample]:
    """Usable samples of ``path`` except the last ``held_out`` conversations, numbered 0..N-1;
    DatasetError when more than ``max_bad_fraction`` is bad or nothing is left to train on."""
    chats = read_chat_jsonl(path)
    split = split_held_out(chats.samples, held_out)
    samples, untokenizable = tokenize_chats(split.training, tokenizer, max_length)
    enforce_bad_sample_budget(
        chats.bad + untokenizable, len(chats.samples) + len(chats.bad), max_bad_fraction
    )
    require_training_left(
        split, held_out
    )  # after the budget: a mostly unreadable file is the first thing to fix
    return samples
