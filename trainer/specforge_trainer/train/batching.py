"""Turn the features behind a list of refs into one padded :class:`Eagle3Batch` on a device.

Samples are right-padded to the longest in the batch, or to a longer ``length`` (data-parallel ranks
pad to the global batch's longest); padding has ``attention_mask = 0`` and ``loss_mask = 0``. Target
logits are recomputed from the stored last hidden state by the frozen target head here, so the feature
store holds H floats per token instead of a vocabulary's worth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from specforge_trainer.train.objective import Eagle3Batch


def _pad_stack(tensors: Sequence[torch.Tensor], length: int) -> torch.Tensor:
    out = tensors[0].new_zeros((len(tensors), length, *tensors[0].shape[1:]))
    for row, tensor in enumerate(tensors):
        out[row, : tensor.shape[0]] = tensor
    return out


def longest_sample(samples: Sequence[dict[str, torch.Tensor]]) -> int:
    return max(int(sample["input_ids"].shape[0]) for sample in samples)


def collate_features(
    samples: Sequence[dict[str, torch.Tensor]],
    target_head: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
    length: int | None = None,
) -> Eagle3Batch:
    if not samples:
        raise ValueError("cannot build a batch from no samples")
    longest = longest_sample(samples)
    if length is None:
        length = longest
    elif length < longest:
        raise ValueError(f"cannot pad samples of up to {longest} tokens to {length}")
    input_ids = _pad_stack([s["input_ids"] for s in samples], length).to(device)
    attention_mask = _pad_stack([torch.ones_like(s["input_ids"]) for s in samples], length).to(device)
    target_hidden = _pad_stack([s["target_hidden"] for s in samples], length).to(device)
    with torch.no_grad():
        target_logits = target_head(target_hidden)
    return Eagle3Batch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        loss_mask=_pad_stack([s["loss_mask"] for s in samples], length).to(device),
        # Features keep the target's dtype on disk (bf16 for most targets); the draft's weights are fp32.
        aux_hidden_states=_pad_stack([s["aux_hidden_states"] for s in samples], length).to(
            device, torch.float32
        ),
        target_logits=target_logits,
    )
