"""Checkpoints: ``epoch_N_step_M/`` folders written atomically at the optimizer boundary.

Each folder holds the draft as a Hugging Face-style EAGLE3 draft (``model.safetensors`` with the
draft's parameter names plus ``config.json``), so SGLang can serve it as is (``specforge export``
writes a smaller copy in the serving dtype), and ``training_state.pt`` with everything else a resume
needs (optimizer, scheduler, RNG, counters, control-plane state: plain types and tensors only, loaded
with ``weights_only=True`` so a file on the checkpoints volume cannot run code in the trainer).

A folder is written under a hidden temporary name, every file and the folder fsynced, and
``complete.json`` (each file's size and SHA-256) written and synced last; then it is renamed into
place and the parent fsynced. A folder without that record is not a checkpoint, and a resume checks
sizes and hashes before it trusts one: a torn or truncated newest checkpoint is skipped for the one
before it. Saving a step again (after a restart) moves the old folder aside before the new one is
renamed in, so there is no moment without a complete checkpoint of that step on disk but the rename.
Only the last ``keep`` folders are kept, and any the run pins (the checkpoint with the best real
acceptance, ``evaluation.intervalSteps``).

Weights are the fp32 master weights, without the frozen ``embed_tokens`` (a copy of the target's,
V x H: ~2 GB for a 128k vocabulary; SGLang and a resume both take it from the target). The config
carries what a serving engine needs to match the target: ``max_position_embeddings``, the target's
``torch_dtype``, rope settings and the attention shape (grouped KV heads, ``head_dim``).
"""

from __future__ import annotations

import hashlib
import json
import logging
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
CONFIG_FILE = "config.json"
COMPLETE_FILE = "complete.json"  # written last: each file's size and SHA-256

logger = logging.getLogger("specforge.checkpoint")


class CorruptCheckpoint(ValueError):
    """A checkpoint folder whose files do not match its completeness record."""


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
    """Checkpoint folders under ``root`` that carry a completeness record, oldest first."""
    if not root.is_dir():
        return []
    found = [
        (step, path)
        for path in root.iterdir()
        if (step := checkpoint_step(path)) is not None and (path / COMPLETE_FILE).is_file()
    ]
    return [path for _, path in sorted(found)]


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def verify_checkpoint(folder: Path) -> None:
    """Raise :class:`CorruptCheckpoint` unless every file matches ``complete.json`` (size, then hash)."""
    try:
        record = json.loads((folder / COMPLETE_FILE).read_text())["files"]
    except (OSError, ValueError, KeyError) as error:
        raise CorruptCheckpoint(f"checkpoint {folder} has no readable {COMPLETE_FILE}: {error}") from None
    for name, expected in record.items():
        path = folder / name
        size = path.stat().st_size if path.is_file() else None
        if size != expected["size"]:
            raise CorruptCheckpoint(
                f"checkpoint {folder}: {name} is {size} bytes, recorded {expected['size']}"
            )
        if _sha256(path) != expected["sha256"]:
            raise CorruptCheckpoint(f"checkpoint {folder}: {name} does not match its recorded SHA-256")


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
    (staging / CONFIG_FILE).write_text(json.dumps(draft_hf_config(draft.config), indent=2) + "\n")
    torch.save(training_state, staging / STATE_FILE)
    files = (WEIGHTS_FILE, CONFIG_FILE, STATE_FILE)
    for name in files:
        _fsync(staging / name)
    record = {
        name: {"size": (staging / name).stat().st_size, "sha256": _sha256(staging / name)} for name in files
    }
    (staging / COMPLETE_FILE).write_text(json.dumps({"files": record}, indent=2) + "\n")
    _fsync(staging / COMPLETE_FILE)
    _fsync(staging)
    _publish(staging, final)
    prune_checkpoints(root, keep=keep, pinned=pinned)
    return final


def _publish(staging: Path, final: Path) -> None:
    """Rename ``staging`` to ``final`` durably; an existing ``final`` (the same step saved again after
    a restart) is moved aside first and deleted only once the new one is in place."""
    replaced = final.with_name(f".{final.name}.replaced-{os.getpid()}")
    if final.exists():
        shutil.rmtree(replaced, ignore_errors=True)
        os.replace(final, replaced)
    os.replace(staging, final)
    _fsync(final.parent)
    shutil.rmtree(replaced, ignore_errors=True)


def prune_checkpoints(root: Path, *, keep: int, pinned: Collection[str] = ()) -> None:
    """Delete all but the newest ``keep`` checkpoint folders and those ``pinned`` by name."""
    for stale in checkpoint_folders(root)[:-keep]:
        if stale.name not in pinned:
            shutil.rmtree(stale, ignore_errors=True)


def latest_checkpoint(root: Path) -> Path | None:
    folders = checkpoint_folders(root)
    return folders[-1] if folders else None


def restore_newest_intact(root: Path, draft: Eagle3DraftModel) -> tuple[Path, dict[str, Any]] | None:
    """Load the newest checkpoint whose files match their record, skipping (and naming) torn ones."""
    for folder in reversed(checkpoint_folders(root)):
        try:
            return folder, load_checkpoint(folder, draft)
        except CorruptCheckpoint as error:
            logger.warning("%s; falling back to the checkpoint before it", error)
    return None


def load_checkpoint(folder: Path, draft: Eagle3DraftModel) -> dict[str, Any]:
    """Load weights into ``draft`` (its frozen embedding stays the target's) and return the training state.
    A folder with a completeness record is verified against it first."""
    if (folder / COMPLETE_FILE).exists():
        verify_checkpoint(folder)
    missing, unexpected = draft.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=False)
    if unexpected or set(missing) - FROZEN_WEIGHTS:
        raise ValueError(
            f"checkpoint {folder} does not fit the draft: missing {sorted(set(missing) - FROZEN_WEIGHTS)}, "
            f"unexpected {sorted(unexpected)}"
        )
    return torch.load(folder / STATE_FILE, weights_only=True)
