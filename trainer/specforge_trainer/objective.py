"""The EAGLE3 training objective: a ``ttt_length``-step unroll, soft cross-entropy, accuracies.

Alignment (see :mod:`specforge_trainer.data.tokenize` for the mask convention): at TTT step ``i``
the draft at position ``t`` sees the token ``x[t+1+i]`` and predicts the target's distribution at
``t+1+i``, i.e. every step shifts ids, target and mask left by one more position. From step 1 on,
its hidden input is its own previous output, so its errors compound as they do when decoding.

Loss at step ``i``: cross-entropy of the draft's log-probabilities against the target's softmax
restricted to the draft vocabulary, averaged over loss-masked positions whose target argmax is in
the draft vocabulary; the total is ``sum(0.8**i * loss_i)``. ``acc_i`` compares the draft's argmax
(mapped back to target ids) with the target's full-vocabulary argmax over all loss-masked positions;
the counts are returned as sums so ranks can all-reduce them before dividing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from specforge_trainer.models.draft import Eagle3DraftModel

STEP_WEIGHT_DECAY = 0.8


@dataclass
class Eagle3Batch:
    """Padded batch tensors, all (B, T[, width]); ``target_logits`` are over the full target vocab."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    loss_mask: torch.Tensor
    aux_hidden_states: torch.Tensor
    target_logits: torch.Tensor


@dataclass
class ObjectiveOutput:
    loss: torch.Tensor  # scalar, the weighted total to backpropagate
    step_losses: torch.Tensor  # (ttt_length,), detached
    correct: torch.Tensor  # (ttt_length,) float sums, detached
    counted: torch.Tensor  # (ttt_length,) float sums, detached


def shift_left(tensor: torch.Tensor, by: int) -> torch.Tensor:
    """Shift along the sequence dim (1), zero-filling the end."""
    if by == 0:
        return tensor
    padding = torch.zeros_like(tensor[:, :by])
    return torch.cat((tensor[:, by:], padding), dim=1)


def eagle3_objective(draft: Eagle3DraftModel, batch: Eagle3Batch, ttt_length: int) -> ObjectiveOutput:
    if ttt_length < 1:
        raise ValueError(f"ttt_length must be at least 1, got {ttt_length}")
    length = batch.input_ids.shape[1]
    rotary, causal_bias = draft.prepare(length, batch.attention_mask)
    draft_ids_to_target = draft.d2t + torch.arange(draft.d2t.numel(), device=draft.d2t.device)
    hidden = draft.project_features(batch.aux_hidden_states)
    cache: list[tuple[torch.Tensor, torch.Tensor]] = []
    total = hidden.new_zeros(())
    step_losses, correct, counted = [], [], []
    for step in range(ttt_length):
        input_ids = shift_left(batch.input_ids, step + 1)
        target_logits = shift_left(batch.target_logits, step + 1)
        mask = shift_left(batch.loss_mask, step + 1).float()
        hidden, logits = draft.step(input_ids, hidden, rotary, causal_bias, cache)
        target_top = target_logits.argmax(-1)
        in_draft_vocab = draft.t2d[target_top].float() * mask
        target_probs = torch.softmax(target_logits[..., draft.t2d].float(), dim=-1)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        per_position = -(target_probs * log_probs).sum(-1)
        step_loss = (per_position * in_draft_vocab).sum() / in_draft_vocab.sum().clamp(min=1.0)
        total = total + STEP_WEIGHT_DECAY**step * step_loss
        with torch.no_grad():
            hits = (draft_ids_to_target[logits.argmax(-1)] == target_top).float() * mask
            step_losses.append(step_loss.detach())
            correct.append(hits.sum())
            counted.append(mask.sum())
    return ObjectiveOutput(
        loss=total,
        step_losses=torch.stack(step_losses),
        correct=torch.stack(correct),
        counted=torch.stack(counted),
    )


def acceptance_length(accuracies: list[float]) -> float:
    """Simulated accepted draft tokens per verify: ``a0 + a0*a1 + a0*a1*a2 + ...``."""
    expected, running = 0.0, 1.0
    for accuracy in accuracies:
        running *= accuracy
        expected += running
    return expected
