"""Checkpoints: ``epoch_N_step_M/`` folders written atomically at the optimizer boundary.

Each folder holds the draft as a Hugging Face-style EAGLE3 draft (``model.safetensors`` with the
draft's parameter names plus ``config.json``), so SGLang can serve it as is (``specforge export``
writes a smaller copy in the serving dtype), and ``training_state.pt``
with everything else a resume needs (optimizer, scheduler, RNG, counters, control-plane state). A
folder is first written under a hidden temporary name and renamed into place, so a crash mid-write
leaves the previous checkpoint the newest complete one. Only the last ``keep`` folders are kept, and
any the run pins (the checkpoint with the best real acceptance, ``evaluation.intervalSteps``).

Weights are the fp32 master weights, without the frozen ``embed_tokens`` (a copy of the target's,
V x H: ~2 GB for a 128k vocabulary; SGLang and a resume both take it from the target). The config
carries what a serving engine needs to match the target: ``max_position_embeddings``, the target's
``torch_dtype``, rope settings and the attention shape (grouped KV heads, ``head_dim``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel

_FOLDER = re.compile(r"^epoch_(\d+)_step_(\d+)$")
WEIGHTS_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"


FROZEN_WEIGHTS = frozenset({"embed_tokens.weight"})


def draft_hf_config(config: DraftConfig) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLMEagle3"],
        "model_type": "llama",
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_attention_heads": config.num_attention_heads,
        "num_key_value_heads": config.kv_heads,
        "head_dim": config.attention_head_dim,
        "num_hidden_layers": 1,
        "vocab_size": config.target_vocab_size,
        "draft_vocab_size": config.draft_vocab_size,
        "max_position_embeddings": config.max_position_embeddings,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "rope_scaling": config.rope_scaling,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": config.torch_dtype,
    }


def draft_weights(draft: Eagle3DraftModel) -> dict[str, torch.Tensor]:
    """The draft's state dict as saved: trained weights and vocab maps, not the frozen embedding."""
    return {
        name: tensor.detach().contiguous().cpu()
        for name, tensor in draft.state_dict().items()
        if name not in FROZEN_WEIGHTS
    }


def checkpoint_step(folder: Path) -> int | None:
    """The global step a checkpoint folder ends at (None: not a checkpoint folder's name)."""
    found = _FOLDER.match(folder.name)
    return int(found.group(2)) if found else None


def checkpoint_folders(root: Path) -> list[Path]:
    """Complete checkpoint folders under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [
        (step, path)
        for path in root.iterdir()
        if (step := checkpoint_step(path)) is not None and path.is_dir()
    ]
    return [path for _, path in sorted(found)]


def save_checkpoint(
    root: Path,
    *,
    epoch: int,
    step: int,
    draft: Eagle3DraftModel,
    training_state: dict[str, Any],
    keep: int,
    pinned: Collection[str] = (),
) -> Path:
    """Write ``epoch_E_step_S/`` and delete all but the newest ``keep`` folders, and those ``pinned``
    by name (the best-measured one)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"epoch_{epoch}_step_{step}"
    staging = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    save_file(draft_weights(draft), str(staging / WEIGHTS_FILE))
    (staging / "config.json").write_text(json.dumps(draft_hf_config(draft.config), indent=2) + "\n")
    torch.save(training_state, staging / STATE_FILE)
    if final.exists():  # the same step again after a restart: replace it
        shutil.rmtree(final)
    os.replace(staging, final)
    prune_checkpoints(root, keep=keep, pinned=pinned)
    return final


def prune_checkpoints(root: Path, *, keep: int, pinned: Collection[str] = ()) -> None:
    """Delete all but the newest ``keep`` checkpoint folders and those ``pinned`` by name."""
    for stale in checkpoint_folders(root)[:-keep]:
        if stale.name not in pinned:
            shutil.rmtree(stale, ignore_errors=True)


def latest_checkpoint(root: Path) -> Path | None:
    folders = checkpoint_folders(root)
    return folders[-1] if folders else None


def load_checkpoint(folder: Path, draft: Eagle3DraftModel) -> dict[str, Any]:
    """Load weights into ``draft`` (its frozen embedding stays the target's) and return the training state."""
    missing, unexpected = draft.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=False)
    if unexpected or set(missing) - FROZEN_WEIGHTS:
        raise ValueError(
            f"checkpoint {folder} does not fit the draft: missing {sorted(set(missing) - FROZEN_WEIGHTS)}, "
            f"unexpected {sorted(unexpected)}"
        )
    return torch.load(folder / STATE_FILE, weights_only=False)
