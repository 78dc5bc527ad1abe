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

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
import torch
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import build_draft_vocab
from specforge_trainer.train.objective import Eagle3Batch, eagle3_objective, shift_left
from transformers import LlamaConfig

UPSTREAM_REQUIREMENT = "specforge==0.2.0"
UPSTREAM_DIR = Path(
    os.environ.get("SPECFORGE_UPSTREAM_DIR", Path.home() / ".cache" / "specforge-upstream" / "site")
)
VOCAB, DRAFT_VOCAB, HIDDEN, HEADS, KV_HEADS, HEAD_DIM = 48, 20, 64, 4, 2, 16
TTT_LENGTH = 4


@pytest.fixture(scope="module")
def upstream() -> Iterator[SimpleNamespace]:
    if not (UPSTREAM_DIR / "specforge" / "algorithms" / "eagle3" / "model.py").is_file():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        subprocess.run([*pip, "--target", str(UPSTREAM_DIR), UPSTREAM_REQUIREMENT], check=True)
    sys.path.insert(0, str(UPSTREAM_DIR))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "flash_attn is not found": the sdpa backend needs none
            import specforge.algorithms.eagle3.model as eagle3_model
            from specforge.core.loss import _compute_loss
            from specforge.modeling.draft.llama3_eagle import LlamaForCausalLMEagle3
            from specforge.modeling.target.target_head import TargetHead

        class ReferenceLogSoftmaxLoss:
            @staticmethod
            def apply(
                logits: torch.Tensor, target_p: torch.Tensor, position_mask: torch.Tensor
            ) -> torch.Tensor:
                return _compute_loss(logits, target_p, position_mask)

        kernel = eagle3_model.LogSoftmaxLoss
        eagle3_model.LogSoftmaxLoss = ReferenceLogSoftmaxLoss
        torch.compiler.set_stance("force_eager")
        yield SimpleNamespace(
            model=eagle3_model, draft_class=LlamaForCausalLMEagle3, preprocess=TargetHead.preprocess
        )
    finally:
        torch.compiler.set_stance("default")
        if "eagle3_model" in locals():
            eagle3_model.LogSoftmaxLoss = kernel
        sys.path.remove(str(UPSTREAM_DIR))
        for name in [n for n in sys.modules if n == "specforge" or n.startswith("specforge.")]:
            del sys.modules[name]


def _ours() -> Eagle3DraftModel:
    torch.manual_seed(0)
    config = DraftConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        target_vocab_size=VOCAB,
        draft_vocab_size=DRAFT_VOCAB,
        max_position_embeddings=256,
    )
    counts = torch.randint(0, VOCAB, (400,), generator=torch.Generator().manual_seed(3))
    vocab = build_draft_vocab([counts], target_vocab_size=VOCAB, draft_vocab_size=DRAFT_VOCAB)
    draft = Eagle3DraftModel(config, torch.nn.Embedding(VOCAB, HIDDEN), vocab)
    with torch.no_grad():  # non-trivial norms, so a swapped norm would show
        for name, parameter in draft.named_parameters():
            if name.endswith("norm.weight"):
                parameter.uniform_(0.5, 1.5)
    return draft


def _theirs(upstream: ModuleType, ours: Eagle3DraftModel) -> torch.nn.Module:
    config = LlamaConfig(
        hidden_size=HIDDEN,
        intermediate_size=2 * HIDDEN,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        num_hidden_layers=1,
        vocab_size=VOCAB,
        rms_norm_eps=ours.config.rms_norm_eps,
        rope_theta=ours.config.rope_theta,
        max_position_embeddings=256,
        hidden_act="silu",
    )
    config.draft_vocab_size = DRAFT_VOCAB
    draft = upstream.draft_class(config, attention_backend="sdpa")
    draft.load_state_dict(ours.state_dict(), strict=True)
    draft.freeze_embedding()  # as upstream trains: the embedding is the target's, frozen
    return draft


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
    ours, batch = _ours(), _batch()
    theirs = _theirs(upstream, ours)
    output = eagle3_objective(ours, batch, TTT_LENGTH)
    output.loss.backward()

    # Upstream's inputs: its own preprocess shifts ids and target; its mask is ours shifted by one.
    input_ids, target, loss_mask = upstream.preprocess(
        None, batch.input_ids, batch.target_logits, shift_left(batch.loss_mask, 1)
    )
    wrapped = upstream.model.OnlineEagle3Model(theirs, length=TTT_LENGTH, attention_backend="sdpa")
    plosses, _, accuracies, *_ = wrapped(
        input_ids=input_ids,
        attention_mask=batch.attention_mask,
        target=target,
        loss_mask=loss_mask,
        hidden_states=batch.aux_hidden_states,
    )
    sum(0.8**i * loss for i, loss in enumerate(plosses)).backward()

    torch.testing.assert_close(output.step_losses, torch.stack(plosses).detach(), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(output.correct / output.counted, torch.stack(accuracies), rtol=0, atol=1e-6)
    assert output.correct.sum() > 0  # some hits: the accuracies compared are not all 0 == 0
    ours_grads, their_grads = _gradients(ours), _gradients(theirs)
    assert ours_grads.keys() == their_grads.keys() and "midlayer.self_attn.q_proj.weight" in ours_grads
    for name, gradient in ours_grads.items():
        torch.testing.assert_close(gradient, their_grads[name], rtol=1e-4, atol=1e-6, msg=name)
