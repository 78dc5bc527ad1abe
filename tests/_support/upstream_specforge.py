"""Upstream SpecForge's own EAGLE3 training modules, for parity tests and the side-by-side benchmark.

Its code comes from the PyPI wheel (``specforge==0.2.0``), installed with ``pip install --no-deps`` into a
cache directory on first use; it is never a runtime dependency. What is used, unmodified:
``LlamaForCausalLMEagle3`` (the draft, ``sdpa`` TTT attention), ``OnlineEagle3Model`` (the TTT unroll,
target shifts, masks, accuracy) and ``TargetHead.preprocess`` (the input shift). One piece is swapped:
``LogSoftmaxLoss`` is a Triton kernel that needs a GPU, so it is routed to
``specforge.core.loss._compute_loss``, the reference implementation upstream keeps beside it (the same
formula). Upstream's ``torch.compile`` decorators run eagerly (no C++ toolchain needed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import build_draft_vocab
from specforge_trainer.train.objective import Eagle3Batch, shift_left
from transformers import LlamaConfig

UPSTREAM_REQUIREMENT = "specforge==0.2.0"
UPSTREAM_DIR = Path(
    os.environ.get("SPECFORGE_UPSTREAM_DIR", Path.home() / ".cache" / "specforge-upstream" / "site")
)


@contextmanager
def upstream_specforge() -> Iterator[SimpleNamespace]:
    """``model`` (its eagle3 module), ``draft_class`` and ``preprocess``; everything undone on exit."""
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


@dataclass(frozen=True)
class DraftShapes:
    """A draft's shapes, as the target decides them (hidden, heads, head_dim, vocabularies)."""

    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    draft_vocab: int
    max_positions: int = 256


def paired_drafts(upstream: SimpleNamespace, shapes: DraftShapes) -> tuple[Eagle3DraftModel, torch.nn.Module]:
    """Our draft (seeded, norms perturbed so a swapped norm would show) and upstream's with its weights."""
    torch.manual_seed(0)
    config = DraftConfig(
        hidden_size=shapes.hidden,
        intermediate_size=shapes.intermediate,
        num_attention_heads=shapes.heads,
        num_key_value_heads=shapes.kv_heads,
        head_dim=shapes.head_dim,
        target_vocab_size=shapes.vocab,
        draft_vocab_size=shapes.draft_vocab,
        max_position_embeddings=shapes.max_positions,
    )
    counts = torch.randint(
        0, shapes.vocab, (max(400, 4 * shapes.draft_vocab),), generator=torch.Generator().manual_seed(3)
    )
    vocab = build_draft_vocab([counts], target_vocab_size=shapes.vocab, draft_vocab_size=shapes.draft_vocab)
    ours = Eagle3DraftModel(config, torch.nn.Embedding(shapes.vocab, shapes.hidden), vocab)
    with torch.no_grad():
        for name, parameter in ours.named_parameters():
            if name.endswith("norm.weight"):
                parameter.uniform_(0.5, 1.5)
    their_config = LlamaConfig(
        hidden_size=shapes.hidden,
        intermediate_size=shapes.intermediate,
        num_attention_heads=shapes.heads,
        num_key_value_heads=shapes.kv_heads,
        head_dim=shapes.head_dim,
        num_hidden_layers=1,
        vocab_size=shapes.vocab,
        rms_norm_eps=ours.config.rms_norm_eps,
        rope_theta=ours.config.rope_theta,
        max_position_embeddings=shapes.max_positions,
        hidden_act="silu",
    )
    their_config.draft_vocab_size = shapes.draft_vocab
    theirs = upstream.draft_class(their_config, attention_backend="sdpa")
    theirs.load_state_dict(ours.state_dict(), strict=True)
    theirs.freeze_embedding()  # as upstream trains: the embedding is the target's, frozen
    return ours, theirs


def upstream_losses(
    upstream: SimpleNamespace, theirs: torch.nn.Module, batch: Eagle3Batch, ttt_length: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Upstream's per-step losses and accuracies for our batch: its own preprocess shifts ids and target;
    its mask is ours shifted by one (see objective.py)."""
    input_ids, target, loss_mask = upstream.preprocess(
        None, batch.input_ids, batch.target_logits, shift_left(batch.loss_mask, 1)
    )
    wrapped = upstream.model.OnlineEagle3Model(theirs, length=ttt_length, attention_backend="sdpa")
    plosses, _, accuracies, *_ = wrapped(
        input_ids=input_ids,
        attention_mask=batch.attention_mask,
        target=target,
        loss_mask=loss_mask,
        hidden_states=batch.aux_hidden_states,
    )
    return list(plosses), list(accuracies)
