"""A run's training conversations: read, tokenized with the target's template, bad ones skipped or fatal."""

from __future__ import annotations

from pathlib import Path

from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from specforge_trainer.data.bad_samples import enforce_bad_sample_budget
from specforge_trainer.data.chat_jsonl import read_chat_jsonl
from specforge_trainer.data.tokenize import TokenizedSample, tokenize_chats


def load_training_set(
    path: str | Path, tokenizer: PreTrainedTokenizerBase, *, max_length: int, max_bad_fraction: float
) -> list[TokenizedSample]:
    """Usable samples of ``path``, numbered 0..N-1; DatasetError when more than ``max_bad_fraction`` is bad."""
    chats = read_chat_jsonl(path)
    samples, untokenizable = tokenize_chats(chats.samples, tokenizer, max_length)
    enforce_bad_sample_budget(
        chats.bad + untokenizable, len(chats.samples) + len(chats.bad), max_bad_fraction
    )
    return samples
