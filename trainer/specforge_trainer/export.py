"""``specforge export``: turn a training checkpoint into a serving directory, and check it loads.

SGLang's EAGLE3 loader (``python/sglang/srt/models/llama_eagle3.py``) skips a weight whose name it
does not know and leaves a parameter it got no weight for at its initial value, without an error;
a config field it reads but does not find falls back to a default (``max_position_embeddings``
2048, ``torch_dtype`` float32 turned into float16 by ``--dtype auto``). So the export resolves every
weight name as that loader does and checks that each parameter it needs gets exactly one weight
of the shape the config implies, and that the config carries every field it reads.

``--to sglang`` writes the weights in the config's ``torch_dtype`` (the target's), ``--to hf``
keeps the fp32 master weights (to fine-tune from; loaders cast them to ``torch_dtype``). Neither holds the frozen ``embed_tokens``:
SGLang takes the target's (``model.embed_tokens.weight`` is its one optional parameter).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from specforge_trainer.train.checkpoint import WEIGHTS_FILE

ExportFormat = Literal["sglang", "hf"]

# The parameters of SGLang's LlamaForCausalLMEagle3 with one decoder layer and untied lm_head.
SGLANG_EAGLE3_PARAMETERS = frozenset(
    {
        "model.fc.weight",
        "model.midlayer.input_layernorm.weight",
        "model.midlayer.hidden_norm.weight",
        "model.midlayer.self_attn.qkv_proj.weight",
        "model.midlayer.self_attn.o_proj.weight",
        "model.midlayer.post_attention_layernorm.weight",
        "model.midlayer.mlp.gate_up_proj.weight",
        "model.midlayer.mlp.down_proj.weight",
        "model.norm.weight",
        "lm_head.weight",
    }
)
SGLANG_OPTIONAL_PARAMETERS = frozenset({"model.embed_tokens.weight"})  # taken from the target
# (checkpoint name part, SGLang's fused parameter part, shard id), as in its load_weights.
SGLANG_STACKED_PARAMETERS = (
    (".q_proj", ".qkv_proj", "q"),
    (".k_proj", ".qkv_proj", "k"),
    (".v_proj", ".qkv_proj", "v"),
    (".gate_proj", ".gate_up_proj", 0),
    (".up_proj", ".gate_up_proj", 1),
)
# Config fields SGLang's EAGLE3 draft (and the Llama layers it reuses) reads.
SGLANG_CONFIG_FIELDS = (
    "architectures",
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "max_position_embeddings",
    "vocab_size",
    "draft_vocab_size",
    "tie_word_embeddings",
    "torch_dtype",
)


class ServingCheckError(ValueError):
    """A serving directory SGLang would load wrongly or refuse; the message lists every problem."""


def sglang_target(name: str) -> tuple[str, str | int | None]:
    """Where SGLang's loader puts a checkpoint weight: (parameter, shard id).

    ``d2t`` becomes the hot-token map and ``t2d`` is ignored; both count as consumed here.
    """
    if "d2t" in name or "t2d" in name:
        return (name, None)
    for part, fused, shard in SGLANG_STACKED_PARAMETERS:
        if part in name:
            resolved = name.replace(part, fused)
            return (_with_model_prefix(resolved), shard)
    return (_with_model_prefix(name), None)


def _with_model_prefix(name: str) -> str:
    return name if name in SGLANG_EAGLE3_PARAMETERS else f"model.{name}"


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Per checkpoint weight name, the shape the config implies."""
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = config.get("head_dim") or hidden // heads
    kv_width = config["num_key_value_heads"] * head_dim
    inner = config["intermediate_size"]
    return {
        "fc.weight": (hidden, 3 * config.get("target_hidden_size", hidden)),
        "midlayer.input_layernorm.weight": (hidden,),
        "midlayer.hidden_norm.weight": (hidden,),
        "midlayer.self_attn.q_proj.weight": (heads * head_dim, 2 * hidden),
        "midlayer.self_attn.k_proj.weight": (kv_width, 2 * hidden),
        "midlayer.self_attn.v_proj.weight": (kv_width, 2 * hidden),
        "midlayer.self_attn.o_proj.weight": (hidden, heads * head_dim),
        "midlayer.post_attention_layernorm.weight": (hidden,),
        "midlayer.mlp.gate_proj.weight": (inner, hidden),
        "midlayer.mlp.up_proj.weight": (inner, hidden),
        "midlayer.mlp.down_proj.weight": (hidden, inner),
        "norm.weight": (hidden,),
        "lm_head.weight": (config["draft_vocab_size"], hidden),
        "d2t": (config["draft_vocab_size"],),
        "t2d": (config["vocab_size"],),
    }


def check_serving_directory(directory: Path) -> None:
    """Raise :class:`ServingCheckError` unless SGLang's EAGLE3 loader would load ``directory`` whole."""
    config = json.loads((directory / "config.json").read_text())
    problems = [f"config.json lacks {field!r}" for field in SGLANG_CONFIG_FIELDS if field not in config]
    if problems:
        raise ServingCheckError(f"{directory}: " + "; ".join(problems))
    if config["architectures"] != ["LlamaForCausalLMEagle3"]:
        problems.append(f"architectures is {config['architectures']}, not ['LlamaForCausalLMEagle3']")
    if config["num_hidden_layers"] != 1 or config["tie_word_embeddings"]:
        problems.append("the draft must have one decoder layer and an untied lm_head")
    weights = load_file(str(directory / WEIGHTS_FILE))
    shapes = expected_shapes(config)
    filled: dict[str, set[str | int | None]] = {}
    for name, tensor in weights.items():
        parameter, shard = sglang_target(name)
        if name not in shapes:
            problems.append(f"weight {name!r} is not one SGLang loads (it would be dropped silently)")
            continue
        if tuple(tensor.shape) != shapes[name]:
            problems.append(
                f"weight {name!r} has shape {tuple(tensor.shape)}, the config implies {shapes[name]}"
            )
        filled.setdefault(parameter, set()).add(shard)
    for parameter in sorted(SGLANG_EAGLE3_PARAMETERS - filled.keys()):
        problems.append(f"no weight fills SGLang's {parameter!r} (it would stay uninitialised)")
    for parameter, shards in filled.items():
        wanted = {
            shard for part, fused, shard in SGLANG_STACKED_PARAMETERS if parameter.endswith(fused + ".weight")
        }
        if wanted and shards != wanted:
            problems.append(
                f"{parameter!r} gets shards {sorted(map(str, shards))}, needs {sorted(map(str, wanted))}"
            )
    for name in ("d2t", "t2d"):
        if name not in weights:
            problems.append(f"weight {name!r} (the draft-to-target vocabulary map) is missing")
    if problems:
        raise ServingCheckError(f"{directory}: " + "; ".join(problems))


def export_checkpoint(checkpoint: Path, out: Path, *, to: ExportFormat) -> Path:
    """Write ``out`` (config.json + model.safetensors) from a checkpoint folder, then check it."""
    if not (checkpoint / WEIGHTS_FILE).is_file() or not (checkpoint / "config.json").is_file():
        raise FileNotFoundError(f"{checkpoint} is not a checkpoint folder (no {WEIGHTS_FILE} or config.json)")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"export directory {out} exists and is not empty")
    config = json.loads((checkpoint / "config.json").read_text())
    weights = load_file(str(checkpoint / WEIGHTS_FILE))
    weights.pop("embed_tokens.weight", None)  # checkpoints from before it was dropped
    if to == "sglang":
        dtype = getattr(torch, config.get("torch_dtype", "float32"))
        weights = {n: t.to(dtype) if t.is_floating_point() else t for n, t in weights.items()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    try:
        check_serving_directory(out)
    except ServingCheckError:
        shutil.rmtree(out)
        raise
    return out
