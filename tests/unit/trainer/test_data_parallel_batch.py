"""Data parallelism must not change the gradient: ranks that pad their slice of a global batch to the
global batch's longest sample, and average their gradients, get the one-rank gradient of that batch."""

from __future__ import annotations

import pytest
import torch
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import build_draft_vocab
from specforge_trainer.train.batching import collate_features
from specforge_trainer.train.objective import eagle3_objective

VOCAB, HIDDEN, TTT = 32, 16, 3
LENGTHS = [(10, 4), (6, 5)]  # per rank; rank 1's longest (6) is shorter than the global batch's (10)


def _draft() -> Eagle3DraftModel:
    torch.manual_seed(0)
    config = DraftConfig(hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_attention_heads=2,
                         target_vocab_size=VOCAB, draft_vocab_size=VOCAB)  # fmt: skip
    vocab = build_draft_vocab([torch.arange(VOCAB)], target_vocab_size=VOCAB, draft_vocab_size=VOCAB)
    return Eagle3DraftModel(config, torch.nn.Embedding(VOCAB, HIDDEN), vocab)


def _sample(length: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.randint(0, VOCAB, (length,), generator=generator),
        "loss_mask": torch.ones(length, dtype=torch.long),
        "target_hidden": torch.randn(length, HIDDEN, generator=generator),
        "aux_hidden_states": torch.randn(length, 3 * HIDDEN, generator=generator),
    }


def _ranks_samples() -> list[list[dict[str, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(1)
    return [[_sample(length, generator) for length in lengths] for lengths in LENGTHS]


def _gradient(samples: list[dict[str, torch.Tensor]], length: int | None) -> torch.Tensor:
    draft = _draft()
    torch.manual_seed(2)
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=False)
    batch = collate_features(samples, head, torch.device("cpu"), length)
    eagle3_objective(draft, batch, TTT).loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in draft.parameters() if p.grad is not None])


def _two_rank_gradient(pad_to: int | None) -> torch.Tensor:
    return torch.stack([_gradient(samples, pad_to) for samples in _ranks_samples()]).mean(0)


def test_ranks_padded_to_the_global_longest_average_to_the_one_rank_gradient() -> None:
    one_rank = _gradient([sample for samples in _ranks_samples() for sample in samples], None)
    torch.testing.assert_close(_two_rank_gradient(pad_to=max(map(max, LENGTHS))), one_rank)
    # Each rank padding only to its own longest sample normalises by a different B*T: not the same gradient.
    assert not torch.allclose(_two_rank_gradient(pad_to=None), one_rank, rtol=1e-3)


def test_padding_below_the_longest_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot pad samples of up to 10 tokens to 6"):
        collate_features(_ranks_samples()[0], torch.nn.Identity(), torch.device("cpu"), 6)
