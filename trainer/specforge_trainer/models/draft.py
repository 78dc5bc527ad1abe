"""The EAGLE3 draft model: ``fc`` over three target layers, one Llama decoder layer, a reduced LM head.

Input per position: the target's three auxiliary hidden states (3H, projected by ``fc`` to H) on the
first training-time-test (TTT) step, the draft's own previous output afterwards, concatenated with
the frozen target embedding of the next token (so attention's q/k/v take 2H). Each TTT step attends
causally over the first step's keys and, at its own position only, over the keys every later step
added: the pattern a decoding draft sees as it extends its own guesses. Parameter names follow the
Hugging Face-style EAGLE3 draft checkpoints serving engines load (``fc``, ``midlayer.*``, ``norm``,
``lm_head``, ``d2t``, ``t2d``). The model knows nothing about distribution or checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from specforge_trainer.models.draft_vocab import DraftVocab


@dataclass(frozen=True)
class DraftConfig:
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    target_vocab_size: int
    draft_vocab_size: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be divisible by num_attention_heads")


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


def rotary_tables(
    length: int, head_dim: int, theta: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    inverse_frequency = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    angles = torch.outer(torch.arange(length, device=device).float(), inverse_frequency)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


class TTTAttention(nn.Module):
    """Self-attention whose key/value cache grows by one entry per position at every TTT step."""

    def __init__(self, config: DraftConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        width = self.num_heads * self.head_dim
        self.q_proj = nn.Linear(2 * config.hidden_size, width, bias=False)
        self.k_proj = nn.Linear(2 * config.hidden_size, width, bias=False)
        self.v_proj = nn.Linear(2 * config.hidden_size, width, bias=False)
        self.o_proj = nn.Linear(width, config.hidden_size, bias=False)

    def _heads(self, projected: torch.Tensor) -> torch.Tensor:
        batch, length, _ = projected.shape
        return projected.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        hidden: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        causal_bias: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        cos, sin = rotary
        query = self._heads(self.q_proj(hidden))
        key = self._heads(self.k_proj(hidden))
        value = self._heads(self.v_proj(hidden))
        query = query * cos + _rotate_half(query) * sin
        key = key * cos + _rotate_half(key) * sin
        cache.append((key, value))
        scale = self.head_dim**-0.5
        first_key, first_value = cache[0]
        scores = [torch.matmul(query, first_key.transpose(-1, -2)) * scale + causal_bias]
        # Keys of later TTT steps are visible only at their own position: a diagonal, one score each.
        scores += [(query * step_key).sum(-1, keepdim=True) * scale for step_key, _ in cache[1:]]
        weights = torch.softmax(torch.cat(scores, dim=-1).float(), dim=-1).to(query.dtype)
        length = query.shape[-2]
        attended = torch.matmul(weights[..., :length], first_value)
        for offset, (_, step_value) in enumerate(cache[1:]):
            attended = attended + weights[..., length + offset : length + offset + 1] * step_value
        batch = hidden.shape[0]
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
        causal_bias: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> torch.Tensor:
        attention_input = torch.cat((self.input_layernorm(embeds), self.hidden_norm(hidden)), dim=-1)
        hidden = hidden + self.self_attn(attention_input, rotary, causal_bias, cache)
        return hidden + self.mlp(self.post_attention_layernorm(hidden))


class Eagle3DraftModel(nn.Module):
    """Draft parameters and one TTT step; the unrolled objective lives in :mod:`specforge_trainer.objective`."""

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
        self.register_buffer("t2d", vocab.t2d.clone())
        self.register_buffer("d2t", vocab.d2t.clone())

    def prepare(
        self, length: int, attention_mask: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Rotary tables and the additive causal + key-padding bias shared by every TTT step."""
        device = attention_mask.device
        rotary = rotary_tables(
            length, self.config.hidden_size // self.config.num_attention_heads, self.config.rope_theta, device
        )
        allowed = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        allowed = allowed[None, None] & attention_mask.bool()[:, None, None, :]
        bias = torch.zeros(allowed.shape, device=device).masked_fill(~allowed, torch.finfo(torch.float32).min)
        return rotary, bias

    def step(
        self,
        input_ids: torch.Tensor,
        hidden: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        causal_bias: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One TTT step: returns (output hidden state for the next step, draft-vocab logits)."""
        embeds = self.embed_tokens(input_ids).to(hidden.dtype)
        hidden_out = self.midlayer(embeds, hidden, rotary, causal_bias, cache)
        return hidden_out, self.lm_head(self.norm(hidden_out))

    def project_features(self, aux_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc(aux_hidden_states)
