"""The EAGLE3 objective on a small random draft: alignment, masking, causality, metrics."""

from __future__ import annotations

import pytest
import torch
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import build_draft_vocab
from specforge_trainer.train.objective import Eagle3Batch, acceptance_length, eagle3_objective, shift_left

VOCAB, HIDDEN = 32, 16


def _draft(draft_vocab: int = 12, width: int = HIDDEN, heads: int = 2) -> Eagle3DraftModel:
    torch.manual_seed(0)
    config = DraftConfig(
        hidden_size=width,
        intermediate_size=2 * width,
        num_attention_heads=heads,
        target_vocab_size=VOCAB,
        draft_vocab_size=draft_vocab,
    )
    vocab = build_draft_vocab([torch.arange(VOCAB)], target_vocab_size=VOCAB, draft_vocab_size=draft_vocab)
    return Eagle3DraftModel(config, torch.nn.Embedding(VOCAB, width), vocab)


def _batch(length: int = 10, batch: int = 2) -> Eagle3Batch:
    generator = torch.Generator().manual_seed(1)
    return Eagle3Batch(
        input_ids=torch.randint(0, VOCAB, (batch, length), generator=generator),
        attention_mask=torch.ones(batch, length, dtype=torch.long),
        loss_mask=torch.ones(batch, length, dtype=torch.long),
        aux_hidden_states=torch.randn(batch, length, 3 * HIDDEN, generator=generator),
        target_logits=torch.randn(batch, length, VOCAB, generator=generator) * 3,
    )


def test_shift_left_zero_fills_the_end() -> None:
    assert shift_left(torch.tensor([[1, 2, 3, 4]]), 2).tolist() == [[3, 4, 0, 0]]


def test_acceptance_length_is_the_expected_accepted_prefix() -> None:
    assert acceptance_length([0.5, 0.5, 1.0]) == pytest.approx(0.5 + 0.25 + 0.25)
    assert acceptance_length([0.0, 1.0]) == 0.0


def test_ttt_length_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="ttt_length must be at least 1"):
        eagle3_objective(_draft(), _batch(), ttt_length=0)


def test_loss_is_the_decayed_sum_and_counts_follow_the_shifted_mask() -> None:
    batch = _batch(length=10)
    output = eagle3_objective(_draft(), batch, ttt_length=3)
    expected = sum(0.8**i * output.step_losses[i] for i in range(3))
    assert output.loss.item() == pytest.approx(float(expected), rel=1e-6)
    # Step i trains positions whose shifted mask survives: 10 - (i + 1) per row, 2 rows.
    assert output.counted.tolist() == [18.0, 16.0, 14.0]
    assert torch.all(output.correct <= output.counted)


def test_a_perfect_draft_scores_full_accuracy() -> None:
    draft, batch = _draft(draft_vocab=VOCAB), _batch()
    # Make the target's preference follow the draft's own argmax: accuracy must then be 1 everywhere.
    with torch.no_grad():
        cache = draft.start_unroll(batch.attention_mask)
        _, logits = draft.step(
            shift_left(batch.input_ids, 1), draft.project_features(batch.aux_hidden_states), cache
        )
    target = torch.full_like(batch.target_logits, -10.0)
    target.scatter_(-1, logits.argmax(-1, keepdim=True), 10.0)
    batch.target_logits = torch.cat([target[:, :1], target[:, :-1]], dim=1)  # align: step 0 reads t+1
    output = eagle3_objective(draft, batch, ttt_length=1)
    assert output.correct[0] == output.counted[0]


def test_future_positions_do_not_leak_into_earlier_ones() -> None:
    draft, batch = _draft(draft_vocab=VOCAB), _batch(length=8)
    changed = _batch(length=8)
    changed.aux_hidden_states[:, 6:] += 5.0
    changed.input_ids[:, 7:] = (changed.input_ids[:, 7:] + 1) % VOCAB
    # Step 0 at position t reads aux[<= t] and ids[<= t + 1]; with the mask cut at 6 only positions
    # 0..4 are trained, and none of them may see the changed inputs.
    changed.loss_mask[:, 6:] = 0
    batch.loss_mask[:, 6:] = 0
    a = eagle3_objective(draft, batch, ttt_length=1)
    b = eagle3_objective(draft, changed, ttt_length=1)
    assert a.loss.item() == pytest.approx(b.loss.item(), abs=1e-6)
    changed.loss_mask[:, 6] = 1  # position 5 now trains and reads aux[5], ids[6]: still unchanged
    changed.aux_hidden_states[:, 5] += 5.0  # ...until one of them changes
    assert eagle3_objective(draft, changed, ttt_length=1).loss.item() != pytest.approx(
        a.loss.item(), abs=1e-6
    )


def test_padding_positions_are_not_trained() -> None:
    batch = _batch(length=10)
    batch.attention_mask[1, 6:] = 0
    batch.loss_mask[1, 5:] = 0
    output = eagle3_objective(_draft(), batch, ttt_length=1)
    assert output.counted.tolist() == [9.0 + 4.0]


@pytest.mark.slow
def test_the_draft_learns_a_target_it_can_see() -> None:
    """A copy target (the target at p prefers x[p], which the draft reads as its input token): the
    architecture and the TTT alignment must let every unrolled position learn it."""
    width = 32
    draft = _draft(draft_vocab=VOCAB, width=width, heads=4)
    optimizer = torch.optim.AdamW([p for p in draft.parameters() if p.requires_grad], lr=3e-3)
    generator = torch.Generator().manual_seed(1)
    for _ in range(120):
        input_ids = torch.randint(0, VOCAB, (4, 16), generator=generator)
        batch = Eagle3Batch(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            loss_mask=torch.ones_like(input_ids),
            aux_hidden_states=torch.randn(4, 16, 3 * width, generator=generator),
            target_logits=torch.nn.functional.one_hot(input_ids, VOCAB).float() * 8,
        )
        output = eagle3_objective(draft, batch, ttt_length=3)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    assert (output.correct / output.counted).min() > 0.9


def test_step_losses_are_averaged_over_all_rows_as_upstream_does() -> None:
    batch = _batch(length=10, batch=2)
    padded = _batch(length=10, batch=3)  # the same two rows plus one that trains nothing
    for name in ("input_ids", "attention_mask", "loss_mask", "aux_hidden_states", "target_logits"):
        getattr(padded, name)[:2] = getattr(batch, name)
    padded.loss_mask[2] = 0
    two_rows = eagle3_objective(_draft(), batch, ttt_length=3)
    three_rows = eagle3_objective(_draft(), padded, ttt_length=3)
    # Same masked sum, divided by B*T = 30 instead of 20 (not by the count of trained positions).
    assert torch.allclose(three_rows.step_losses, two_rows.step_losses * 2 / 3, rtol=1e-5)
    assert three_rows.counted.tolist() == two_rows.counted.tolist()
