"""The draft vocabulary keeps the most frequent tokens, deterministically, in the serving format."""

from __future__ import annotations

import pytest
import torch
from specforge_trainer.models.draft_vocab import build_draft_vocab


def test_most_frequent_tokens_with_ties_broken_by_id() -> None:
    sequences = [torch.tensor([5, 5, 5, 2, 2, 9, 9, 7]), torch.tensor([7, 1])]
    vocab = build_draft_vocab(sequences, target_vocab_size=10, draft_vocab_size=3)
    # counts: 5->3, 2->2, 7->2, 9->2, 1->1; ties among 2, 7, 9 keep the lowest ids.
    assert vocab.draft_ids_to_target.tolist() == [2, 5, 7]
    assert vocab.t2d.nonzero().flatten().tolist() == [2, 5, 7]
    assert vocab.d2t.tolist() == [2, 4, 5]  # offsets: target_id - draft_id


def test_fills_with_unseen_ids_when_data_has_few_tokens() -> None:
    vocab = build_draft_vocab([torch.tensor([4, 4])], target_vocab_size=8, draft_vocab_size=3)
    assert vocab.draft_ids_to_target.tolist() == [0, 1, 4]


@pytest.mark.parametrize("size", [0, 11])
def test_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="draft_vocab_size must be in"):
        build_draft_vocab([torch.tensor([1])], target_vocab_size=10, draft_vocab_size=size)
