"""The EAGLE3 training objective: a ``ttt_length``-step unroll, soft cross-entropy, accuracies.

Alignment (see :mod:`specforge_trainer.data.tokenize` for the mask convention): at TTT step ``i``
the draft at position ``t`` sees the token ``x[t+1+i]`` and predicts the target's distribution at
``t+1+i``, i.e. every step shifts ids, target and mask left by one more position. From step 1 on,
its hidden input is its own previous output, so its errors compound as they do when decoding.

Loss at step ``i``: cross-entropy of the draft's log-probabilities against the target's softmax
restricted to the draft vocabulary, summed over loss-masked positions whose target argmax is in
the draft vocabulary and divided by all ``B*T`` rows, as upstream SpecForge does, so logged losses
compare with upstream's (data-parallel ranks pad to the global batch's longest sample, so their mean is
the one-rank loss of that batch); the total is ``sum(0.8**i * loss_i)``. ``acc_i`` compares the draft's
argmax (mapped back to target ids) with the target's full-vocabulary argmax over all loss-masked
positions; the counts are returned as sums so ranks can all-reduce them before dividing.

Mask convention versus upstream: upstream's ``loss_mask[t]`` marks the *input* token ``t`` as an
assistant token and is not shifted before step 0, so at each turn's edges it trains one position
that predicts the first non-assistant token and skips the one predicting the first assistant token
(shifted by two relative to what the turn contains). Ours marks the position whose *prediction* is
an assistant token; ``upstream_loss_mask = shift_left(our_loss_mask, 1)`` gives identical losses.

The teacher (target argmax, draft-vocabulary probabilities) is computed once from the full-vocab
logits; each step then takes a shifted view of it, so no full-vocabulary tensor is copied per step.
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


@dataclass(frozen=True)
class Teacher:
    """Per-position targets, (B, T[, draft_vocab]): what every TTT step slices."""

    top_token: torch.Tensor  # the target's full-vocabulary argmax
    in_draft_vocab: torch.Tensor  # float: is that argmax a draft-vocabulary token
    draft_probs: torch.Tensor  # float32 softmax over the draft vocabulary's columns


def shift_left(tensor: torch.Tensor, by: int) -> torch.Tensor:
    """Shift along the sequence dim (1), zero-filling the end."""
    if by == 0:
        return tensor
    padding = torch.zeros_like(tensor[:, :by])
    return torch.cat((tensor[:, by:], padding), dim=1)


@torch.no_grad()
def teacher_from_logits(target_logits: torch.Tensor, t2d: torch.Tensor) -> Teacher:
    top_token = target_logits.argmax(-1)
    return Teacher(
        top_token=top_token,
        in_draft_vocab=t2d[top_token].float(),
        draft_probs=torch.softmax(target_logits[..., t2d].float(), dim=-1),
    )


def eagle3_objective(draft: Eagle3DraftModel, batch: Eagle3Batch, ttt_length: int) -> ObjectiveOutput:
    if ttt_length < 1:
        raise ValueError(f"ttt_length must be at least 1, got {ttt_length}")
    rows, length = batch.input_ids.shape
    teacher = teacher_from_logits(batch.target_logits, draft.t2d)
    draft_ids_to_target = draft.draft_ids_to_target
    hidden = draft.project_features(batch.aux_hidden_states)
    cache = draft.start_unroll(batch.attention_mask)
    total = hidden.new_zeros((), dtype=torch.float32)
    step_losses, correct, counted = [], [], []
    for step in range(ttt_length):
        shift = step + 1
        hidden, logits = draft.step(shift_left(batch.input_ids, shift), hidden, cache)
        # Rows past ``length - shift`` have no target left (the mask is zero there): skip them.
        kept = length - shift
        mask = batch.loss_mask[:, shift:].float()
        log_probs = torch.log_softmax(logits[:, :kept].float(), dim=-1)
        per_position = -(teacher.draft_probs[:, shift:] * log_probs).sum(-1)
        step_loss = (per_position * teacher.in_draft_vocab[:, shift:] * mask).sum() / (rows * length)
        total = total + STEP_WEIGHT_DECAY**step * step_loss
        with torch.no_grad():
            predicted = draft_ids_to_target[logits[:, :kept].argmax(-1)]
            hits = (predicted == teacher.top_token[:, shift:]).float() * mask
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
