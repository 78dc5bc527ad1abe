"""The frozen target model: a Hugging Face causal LM whose hidden states are the draft's features.

Two sources, one wrapper: a local HF directory (``local_files_only``, never the hub) or the
built-in ``tiny-llama`` (a small Llama with random weights from a fixed seed and the bundled
tokenizer) so tests and the demo need no download. Every parameter is frozen; the wrapper exposes
only what feature extraction and the loss need: the three auxiliary layers, the last hidden state
(after the final norm) and the LM head that turns it into logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from specforge_trainer.resources import BUILTIN_TOKENIZER_DIR

BUILTIN_TARGET_SEED = 1234
BUILTIN_HEAD_SCALE = 6.0
# Shapes of the built-in target: big enough to have 3 distinct auxiliary layers, small enough that
# a CPU trains a draft against it in about a minute.
_BUILTIN_CONFIGS = {
    "tiny-llama": dict(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=8,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        # Wider than the HF default (0.02) so the random target has peaked, context-dependent
        # next-token choices for the draft to learn, rather than a near-uniform distribution.
        initializer_range=0.05,
    )
}


def default_aux_layer_ids(num_layers: int) -> tuple[int, int, int]:
    """EAGLE3's low, middle and high layers: ``[1, L//2 - 1, L - 4]``."""
    if num_layers < 5:
        raise ValueError(
            f"EAGLE3 needs a target with at least 5 layers for 3 auxiliary layers, got {num_layers}"
        )
    return (1, num_layers // 2 - 1, num_layers - 4)


@dataclass(frozen=True)
class TargetFeatures:
    """Per-sample target outputs: ``aux_hidden_states`` (T, 3H) and ``target_hidden`` (T, H)."""

    aux_hidden_states: torch.Tensor
    target_hidden: torch.Tensor


class TargetModel:
    """A frozen causal LM plus its tokenizer; computes EAGLE3 features one sample at a time."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        *,
        version: str,
        aux_layer_ids: tuple[int, int, int] | None = None,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.version = version
        config = model.config
        self.hidden_size: int = config.hidden_size
        self.vocab_size: int = config.vocab_size
        self.num_layers: int = config.num_hidden_layers
        self.num_attention_heads: int = config.num_attention_heads
        self.intermediate_size: int = config.intermediate_size
        self.rms_norm_eps: float = getattr(config, "rms_norm_eps", 1e-6)
        self.rope_theta: float = _rope_theta(config)
        self.aux_layer_ids = aux_layer_ids or default_aux_layer_ids(self.num_layers)

    @property
    def embedding(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def lm_head(self) -> nn.Module:
        return self.model.get_output_embeddings()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device) -> TargetModel:
        self.model.to(device)
        return self

    @torch.no_grad()
    def extract_features(self, input_ids: torch.Tensor) -> TargetFeatures:
        """Features of one unpadded sample (1-D ``input_ids``); per-sample so every mode computes
        bit-identical values regardless of how samples are batched."""
        if input_ids.dim() != 1:
            raise ValueError(
                f"extract_features takes one sample (1-D input_ids), got shape {tuple(input_ids.shape)}"
            )
        output = self.model(input_ids=input_ids.unsqueeze(0).to(self.device), output_hidden_states=True)
        # hidden_states[0] is the embedding output, so decoder layer k's output is index k + 1.
        aux = torch.cat([output.hidden_states[layer + 1][0] for layer in self.aux_layer_ids], dim=-1)
        return TargetFeatures(
            aux_hidden_states=aux.contiguous(), target_hidden=output.hidden_states[-1][0].contiguous()
        )

    @torch.no_grad()
    def logits_from_hidden(self, target_hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(target_hidden)


def _rope_theta(config: object) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        rope_parameters = getattr(config, "rope_parameters", None) or {}
        theta = rope_parameters.get("rope_theta", 10000.0)
    return float(theta)


def build_builtin_target(name: str) -> TargetModel:
    """The built-in target: random Llama weights from a fixed seed, the bundled tokenizer."""
    if name not in _BUILTIN_CONFIGS:
        raise ValueError(f"unknown built-in target {name!r}; known: {', '.join(sorted(_BUILTIN_CONFIGS))}")
    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_TOKENIZER_DIR, local_files_only=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **_BUILTIN_CONFIGS[name]
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(BUILTIN_TARGET_SEED)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.random.set_rng_state(generator_state)
    with torch.no_grad():
        # A trained LM's next-token distribution is peaked; a random head's is nearly flat (logit std
        # ~0.6), which leaves the soft-target loss almost blind to which token wins. Scaling the head
        # keeps its argmax and sharpens the distribution to what a draft meets on a real target.
        model.lm_head.weight.mul_(BUILTIN_HEAD_SCALE)
    return TargetModel(model, tokenizer, version=f"builtin:{name}:seed{BUILTIN_TARGET_SEED}")


def load_target_from_directory(path: str | Path) -> TargetModel:
    """A Hugging Face model directory on local disk; missing or incomplete directories fail clearly."""
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"target model directory {str(directory)!r} does not exist")
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"target model directory {str(directory)!r} has no config.json")
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True)
    return TargetModel(model, tokenizer, version=f"path:{directory.resolve()}")


def load_target(*, builtin: str | None = None, path: str | Path | None = None) -> TargetModel:
    if (builtin is None) == (path is None):
        raise ValueError("exactly one of a built-in target name or a target model path must be given")
    return build_builtin_target(builtin) if builtin is not None else load_target_from_directory(path)  # type: ignore[arg-type]
