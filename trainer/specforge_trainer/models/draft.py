"""The EAGLE3 draft model: ``fc`` over three target layers, one Llama decoder layer, a reduced LM head.

Input per position: the target's three auxiliary hidden states (3H, projected by ``fc`` to H) on the
first training-time-test (TTT) step, the draft's own previous output afterwards, concatenated with
the frozen target embedding of the next token (so attention's q/k/v take 2H). Each TTT step attends
causally over the first step's keys and, at its own position only, over the keys every later step
added: the pattern a decoding draft sees as it extends its own guesses. Step ``i`` sits ``i``
positions further on than step 0, so its queries and keys are rotated at ``position + i``, as
SGLang advances the position by one per draft token (and as upstream SpecForge trains).

Attention runs through ``scaled_dot_product_attention`` over the keys of all steps so far with a
boolean mask (causal + padding on step 0's block, the diagonal on later blocks), so no (T, T)
score matrix is kept for backward. Attention follows the target's shape: grouped KV heads and
``head_dim`` as in the target's config, rotary settings (``rope_theta``, ``rope_scaling``) through
transformers' own rotary implementation.

Parameter names follow the EAGLE3 draft checkpoints SGLang loads (``fc``, ``midlayer.*``, ``norm``,
``lm_head``, ``d2t``, ``t2d``). The model knows nothing about distribution or checkpoints.

Public API for inference (e.g. greedy chain drafting)::

    hidden = draft.project_features(aux_hidden_states)        # (B, T, 3H) -> (B, T, H)
    cache = draft.start_unroll(attention_mask)                 # (B, T) 1 = real token
    for _ in range(k):                                         # step i: positions + i
        hidden, logits = draft.step(next_input_ids, hidden, cache)
        guess = draft.draft_ids_to_target[logits.argmax(-1)]   # draft vocab -> target ids

At step ``i`` the row ``t`` reads the token at ``t + 1 + i`` and predicts the one at ``t + 2 + i``;
the last real position of a prefix therefore drafts a chain of ``k`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from specforge_trainer.models.draft_vocab import DraftVocab


@dataclass(frozen=True)
class DraftConfig:
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    target_vocab_size: int
    draft_vocab_size: int
    num_key_value_heads: int | None = None  # None: as many as attention heads
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict[str, Any] | None = None  # the target's, e.g. {"rope_type": "llama3", ...}
    max_position_embeddings: int = 2048
    torch_dtype: str = "float32"  # the dtype the draft is served in (the target's)

    def __post_init__(self) -> None:
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")
        if self.num_attention_heads % self.kv_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.kv_heads})"
            )

    @property
    def kv_heads(self) -> int:
        return self.num_key_value_heads or self.num_attention_heads

    @property
    def attention_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_attention_heads

    @classmethod
    def for_target(cls, target_config: Any, *, draft_vocab_size: int) -> DraftConfig:
        """A draft shaped like the target's decoder layers, read from its Hugging Face config."""
        rope = dict(getattr(target_config, "rope_parameters", None) or {})
        rope_theta = float(getattr(target_config, "rope_theta", None) or rope.get("rope_theta", 10000.0))
        rope_scaling = getattr(target_config, "rope_scaling", None) or {
            k: v for k, v in rope.items() if k != "rope_theta"
        }
        if rope_scaling.get("rope_type", rope_scaling.get("type", "default")) == "default":
            rope_scaling = None
        dtype = getattr(target_config, "dtype", None) or getattr(target_config, "torch_dtype", None)
        return cls(
            hidden_size=target_config.hidden_size,
            intermediate_size=target_config.intermediate_size,
            num_attention_heads=target_config.num_attention_heads,
            num_key_value_heads=getattr(target_config, "num_key_value_heads", None),
            head_dim=getattr(target_config, "head_dim", None),
            target_vocab_size=target_config.vocab_size,
            draft_vocab_size=draft_vocab_size,
            rms_norm_eps=getattr(target_config, "rms_norm_eps", 1e-6),
            rope_theta=rope_theta,
            rope_scaling=dict(rope_scaling) if rope_scaling else None,
            max_position_embeddings=getattr(target_config, "max_position_embeddings", 2048),
            torch_dtype=str(dtype or torch.float32).removeprefix("torch."),
        )

    def rotary_config(self) -> LlamaConfig:
        rope = dict(self.rope_scaling or {"rope_type": "default"})
        return LlamaConfig(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            head_dim=self.attention_head_dim,
            rope_parameters={**rope, "rope_theta": self.rope_theta},
            max_position_embeddings=self.max_position_embeddings,
        )


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        variance = hidden.float().pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden.float() * torch.rsqrt(variance + self.eps)).to(hidden.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


@dataclass
class TTTCache:
    """What one unroll shares across its steps: the step-0 mask and every step's keys and values.

    ``first_block_mask`` (B, 1, T, T) bool allows causal, non-padding keys of step 0; each later
    step's keys are visible only on the diagonal (a position sees its own key of that step).
    """

    first_block_mask: torch.Tensor
    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    @property
    def steps_done(self) -> int:
        return len(self.keys)

    def mask(self) -> torch.Tensor:
        """The mask over the keys of all steps so far, for the step about to attend."""
        length = self.first_block_mask.shape[-1]
        diagonal = torch.eye(length, dtype=torch.bool, device=self.first_block_mask.device)
        blocks = [self.first_block_mask]
        blocks += [diagonal.expand_as(self.first_block_mask)] * (len(self.keys) - 1)
        return torch.cat(blocks, dim=-1)


class TTTAttention(nn.Module):
    """Self-attention whose key/value cache grows by one entry per position at every TTT step."""

    def __init__(self, config: DraftConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.kv_heads
        self.head_dim = config.attention_head_dim
        self.q_proj = nn.Linear(2 * config.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(2 * config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(2 * config.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=False)

    def _heads(self, projected: torch.Tensor, heads: int) -> torch.Tensor:
        batch, length, _ = projected.shape
        return projected.view(batch, length, heads, self.head_dim).transpose(1, 2)

    def forward(
        self, hidden: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor], cache: TTTCache
    ) -> torch.Tensor:
        cos, sin = (table.unsqueeze(1).to(hidden.dtype) for table in rotary)
        query = self._heads(self.q_proj(hidden), self.num_heads)
        key = self._heads(self.k_proj(hidden), self.num_kv_heads)
        value = self._heads(self.v_proj(hidden), self.num_kv_heads)
        query = query * cos + _rotate_half(query) * sin
        key = key * cos + _rotate_half(key) * sin
        cache.keys.append(key)
        cache.values.append(value)
        attended = F.scaled_dot_product_attention(
            query,
            torch.cat(cache.keys, dim=2),
            torch.cat(cache.values, dim=2),
            attn_mask=cache.mask(),
            enable_gqa=self.num_kv_heads != self.num_heads,
        )
        batch, _, length, _ = attended.shape
        return self.o_proj(attended.transpose(1, 2).reshape(batch, length, -1))


class DraftMLP(nn.Module):
    def __init__(self, config: DraftConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(hidden)) * self.up_proj(hidden))


class DraftDecoderLayer(nn.Module):
    def __init__(self, config: DraftConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.hidden_norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = TTTAttention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = DraftMLP(config)

    def forward(
        self,
        embeds: torch.Tensor,
        hidden: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        cache: TTTCache,
    ) -> torch.Tensor:
        attention_input = torch.cat((self.input_layernorm(embeds), self.hidden_norm(hidden)), dim=-1)
        hidden = hidden + self.self_attn(attention_input, rotary, cache)
        return hidden + self.mlp(self.post_attention_layernorm(hidden))


class Eagle3DraftModel(nn.Module):
    """Draft parameters and one TTT step; the unrolled objective lives in :mod:`specforge_trainer.train.objective`."""

    t2d: torch.Tensor  # (target_vocab,) bool buffer
    d2t: torch.Tensor  # (draft_vocab,) int64 buffer: target id - draft id

    def __init__(self, config: DraftConfig, target_embedding: nn.Embedding, vocab: DraftVocab) -> None:
        super().__init__()
        if vocab.d2t.numel() != config.draft_vocab_size or vocab.t2d.numel() != config.target_vocab_size:
            raise ValueError(
                "the draft vocabulary mapping does not match the draft config's vocabulary sizes"
            )
        self.config = config
        self.embed_tokens = nn.Embedding.from_pretrained(
            target_embedding.weight.detach().clone(), freeze=True
        )
        self.fc = nn.Linear(3 * config.hidden_size, config.hidden_size, bias=False)
        self.midlayer = DraftDecoderLayer(config)
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.draft_vocab_size, bias=False)
        self.rotary = LlamaRotaryEmbedding(config.rotary_config())
        self.register_buffer("t2d", vocab.t2d.clone())
        self.register_buffer("d2t", vocab.d2t.clone())

    @property
    def draft_ids_to_target(self) -> torch.Tensor:
        """(draft_vocab,) the target token id of each draft-vocabulary entry."""
        return self.d2t + torch.arange(self.d2t.numel(), device=self.d2t.device)

    def project_features(self, aux_hidden_states: torch.Tensor) -> torch.Tensor:
        """(B, T, 3H) target features -> (B, T, H), the hidden input of TTT step 0."""
        return self.fc(aux_hidden_states)

    def start_unroll(self, attention_mask: torch.Tensor) -> TTTCache:
        """An empty cache for a new unroll over a right-padded (B, T) batch (1 = real token)."""
        length = attention_mask.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
        return TTTCache(first_block_mask=causal[None, None] & attention_mask.bool()[:, None, None, :])

    def step(
        self, input_ids: torch.Tensor, hidden: torch.Tensor, cache: TTTCache
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One TTT step at positions ``arange(T) + cache.steps_done``: (next hidden, draft-vocab logits)."""
        batch, length = input_ids.shape
        positions = torch.arange(length, device=input_ids.device) + cache.steps_done
        rotary = self.rotary(hidden, positions.expand(batch, length))
        embeds = self.embed_tokens(input_ids).to(hidden.dtype)
        hidden_out = self.midlayer(embeds, hidden, rotary, cache)
        return hidden_out, self.lm_head(self.norm(hidden_out))
