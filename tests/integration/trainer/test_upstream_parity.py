"""Our EAGLE3 objective against upstream SpecForge's own training forward, on equal inputs.

Upstream's code comes from its PyPI wheel (``specforge==0.2.0``), installed test-only with
``pip install --no-deps`` into a cache directory by the ``upstream`` fixture; it is never a runtime
dependency. What runs from upstream, unmodified: ``LlamaForCausalLMEagle3`` (its EAGLE3 draft,
the ``sdpa`` backend's TTT attention with ``position_ids + lck`` rotary), ``OnlineEagle3Model``
(its TTT unroll, target shifts, masks, accuracy) and ``TargetHead.preprocess`` (its input shift).
One piece is swapped: ``LogSoftmaxLoss`` is a Triton kernel that needs a GPU, so the test routes it
to ``specforge.core.loss._compute_loss``, the reference implementation upstream keeps beside the
kernel (the same formula: ``-sum(mask * p * log_softmax(logits)) / (B*T)``). Upstream's
``torch.compile`` decorators run eagerly (``torch.compiler.set_stance("force_eager")``) so the
test needs no C++ toolchain. The only conversion is the mask convention (see ``objective.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch
from _support.upstream_specforge import DraftShapes, paired_drafts, upstream_losses, upstream_specforge
from specforge_trainer.train.objective import Eagle3Batch, eagle3_objective

VOCAB, DRAFT_VOCAB, HIDDEN, HEADS, KV_HEADS, HEAD_DIM = 48, 20, 64, 4, 2, 16
SHAPES = DraftShapes(HIDDEN, 2 * HIDDEN, HEADS, KV_HEADS, HEAD_DIM, VOCAB, DRAFT_VOCAB)
TTT_LENGTH = 4


@pytest.fixture(scope="module")
def upstream() -> Iterator[SimpleNamespace]:
    with upstream_specforge() as modules:
        yield modules


def _batch() -> Eagle3Batch:
    generator = torch.Generator().manual_seed(1)
    batch, length = 2, 14
    loss_mask = torch.zeros(batch, length, dtype=torch.long)
    loss_mask[0, 3:9] = 1  # two assistant turns in row 0, one in the padded row 1
    loss_mask[0, 11:13] = 1
    loss_mask[1, 2:8] = 1
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    attention_mask[1, 10:] = 0
    target_logits = torch.randn(batch, length, VOCAB, generator=generator) * 4
    return Eagle3Batch(
        input_ids=torch.randint(0, VOCAB, (batch, length), generator=generator) * attention_mask,
        attention_mask=attention_mask,
        loss_mask=loss_mask,
        aux_hidden_states=torch.randn(batch, length, 3 * HIDDEN, generator=generator),
        target_logits=target_logits,
    )


def _gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_loss_accuracy_and_gradients_match_upstream(upstream: SimpleNamespace) -> None:
    ours, theirs = paired_drafts(upstream, SHAPES)
    batch = _batch()
    output = eagle3_objective(ours, batch, TTT_LENGTH)
    output.loss.backward()

    plosses, accuracies = upstream_losses(upstream, theirs, batch, TTT_LENGTH)
    sum(0.8**i * loss for i, loss in enumerate(plosses)).backward()

    torch.testing.assert_close(output.step_losses, torch.stack(plosses).detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(output.correct / output.counted, torch.stack(accuracies), rtol=0, atol=1e-6)
    assert output.correct.sum() > 0  # some hits: the accuracies compared are not all 0 == 0
    ours_grads, their_grads = _gradients(ours), _gradients(theirs)
    assert ours_grads.keys() == their_grads.keys() and "midlayer.self_attn.q_proj.weight" in ours_grads
    for name, gradient in ours_grads.items():
        torch.testing.assert_close(gradient, their_grads[name], rtol=1e-4, atol=1e-6, msg=name)
