"""The draft's reduced vocabulary: the most frequent target tokens in the training data.

EAGLE3 drafts predict over ``draft_vocab_size`` tokens only; ``t2d`` (bool, target vocab) marks
which target tokens are in the draft vocabulary and ``d2t`` (int, draft vocab) stores
``target_id - draft_id``, the offset format serving engines load with the draft weights.
Ties in frequency break by token id so the mapping is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DraftVocab:
    t2d: torch.Tensor  # (target_vocab,) bool
    d2t: torch.Tensor  # (draft_vocab,) int64 offsets

    @property
    def draft_ids_to_target(self) -> torch.Tensor:
        return self.d2t + torch.arange(self.d2t.numel())


def build_draft_vocab(
    token_sequences: Iterable[torch.Tensor], *, target_vocab_size: int, draft_vocab_size: int
) -> DraftVocab:
    """Count tokens of ``token_sequences`` (e.g. the loss-masked target tokens) and keep the top ones.

    If fewer distinct tokens occur than ``draft_vocab_size``, the rest are filled with the lowest
    unseen ids, so the draft head always has exactly ``draft_vocab_size`` rows.
    """
    if not 1 <= draft_vocab_size <= target_vocab_size:
        raise ValueError(f"draft_vocab_size must be in [1, {target_vocab_size}], got {draft_vocab_size}")
    counts = torch.zeros(target_vocab_size, dtype=torch.long)
    for tokens in token_sequences:
        counts += torch.bincount(tokens.flatten().long(), minlength=target_vocab_size)[:target_vocab_size]
    # Stable sort on descending count keeps ascending token id among equal counts.
    order = torch.sort(-counts, stable=True).indices
    chosen = torch.sort(order[:draft_vocab_size]).values
    t2d = torch.zeros(target_vocab_size, dtype=torch.bool)
    t2d[chosen] = True
    return DraftVocab(t2d=t2d, d2t=chosen - torch.arange(draft_vocab_size))
