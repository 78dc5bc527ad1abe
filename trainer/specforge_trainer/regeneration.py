"""The regeneration stage of a run (``spec.dataset.regenerate``): where its file lives, who answers what,
and how the other processes wait for it.

The regenerated JSONL lives in the feature store, beside the features computed from it, under a name
that digests everything its bytes depend on (the source file, the settings, the target), so a changed
input never reuses a stale file and an unchanged one is answered once. Trainer ranks (colocated modes)
or producers (disaggregated) answer their shards of the batches; trainers of a disaggregated run only
wait for the merged file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from specforge_api import SpecForgeRun

from specforge_trainer.data.regenerate import (
    RegenerateResult,
    RegenerateSettings,
    finished_conversations,
    merge_if_complete,
    regenerate_dataset,
)
from specforge_trainer.resources import builtin_dataset_path

logger = logging.getLogger(__name__)

REGENERATED_DIR = "regenerated"
WAIT_POLL_S = 2.0


def source_dataset(run: SpecForgeRun) -> Path:
    dataset = run.spec.dataset
    return Path(dataset.path or builtin_dataset_path(dataset.builtin or ""))


def regenerate_settings(run: SpecForgeRun) -> RegenerateSettings | None:
    spec = run.spec.dataset.regenerate
    if spec is None:
        return None
    return RegenerateSettings(
        max_new_tokens=spec.max_new_tokens,
        batch_size=spec.batch_size,
        temperature=spec.temperature,
        top_p=spec.top_p,
        seed=run.spec.training.seed,
    )


def _target_identity(run: SpecForgeRun) -> str:
    target = run.spec.target_model
    if target.builtin:
        return f"builtin:{target.builtin}"
    # Names, sizes and modification times: a replaced model gets a new file, without hashing gigabytes.
    path = Path(target.path or "")
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files if p.exists())


def regenerated_dataset(run: SpecForgeRun, feature_store_dir: Path) -> Path:
    """Where the run's regenerated conversations are (or will be) written."""
    settings = regenerate_settings(run)
    digest = hashlib.sha256()
    digest.update(source_dataset(run).read_bytes())
    digest.update(json.dumps(settings.__dict__ if settings else {}, sort_keys=True).encode())
    digest.update(_target_identity(run).encode())
    return Path(feature_store_dir) / REGENERATED_DIR / f"{run.name}-{digest.hexdigest()[:12]}.jsonl"


def training_dataset(run: SpecForgeRun, feature_store_dir: Path | None) -> Path:
    """The file training reads: the regenerated one when the run regenerates, else the source."""
    if run.spec.dataset.regenerate is None:
        return source_dataset(run)
    if feature_store_dir is None:
        raise ValueError("spec.dataset.regenerate needs a feature store directory for the regenerated file")
    return regenerated_dataset(run, feature_store_dir)


def answer_shard(
    run: SpecForgeRun,
    out: Path,
    *,
    shard_index: int,
    num_shards: int,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
) -> RegenerateResult:
    """Answer shard ``shard_index`` of the run's source conversations into ``out`` with the run's target
    (loaded here, dropped afterwards); the defaults of ``spec.dataset.regenerate`` when it is unset."""
    from specforge_trainer.models.target import describe_target

    settings = regenerate_settings(run) or RegenerateSettings(seed=run.spec.training.seed)
    spec = run.spec.target_model
    target = describe_target(builtin=spec.builtin, path=spec.path).load().to(device)
    started = time.monotonic()
    result = regenerate_dataset(
        source_dataset(run),
        out,
        target,
        settings,
        shard_index=shard_index,
        num_shards=num_shards,
        progress=progress,
    )
    logger.info(
        "regeneration shard %d/%d: answered %d of %d conversations in %.0f s",
        shard_index,
        num_shards,
        result.answered_here,
        result.conversations,
        time.monotonic() - started,
    )
    return result


def wait_for_regenerated(
    run: SpecForgeRun,
    feature_store_dir: Path,
    timeout_s: float,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Block until every shard's batches are done and the merged file exists (merging it if needed),
    reporting the conversations in finished batches whoever answered them."""
    settings = regenerate_settings(run)
    assert settings is not None
    from specforge_trainer.data.chat_jsonl import read_chat_jsonl

    conversations = len(read_chat_jsonl(source_dataset(run)).samples)
    out = regenerated_dataset(run, feature_store_dir)
    deadline, reported = time.monotonic() + timeout_s, -1
    while True:
        done = finished_conversations(out, conversations, settings.batch_size)
        if progress is not None and done != reported:
            progress(done, conversations)
            reported = done
        if merge_if_complete(out, -(-conversations // settings.batch_size)):
            return out
        if time.monotonic() > deadline:
            raise TimeoutError(f"the regenerated dataset {out} was not complete after {timeout_s:.0f} s")
        time.sleep(WAIT_POLL_S)


def ensure_regenerated(
    run: SpecForgeRun,
    feature_store_dir: Path,
    *,
    shard_index: int,
    num_shards: int,
    answer: bool,
    device: torch.device,
    progress: Callable[[int, int], None] | None = None,
    timeout_s: float = 7 * 24 * 3600.0,
) -> Path | None:
    """The regeneration stage as one process of a run takes part in it: answer shard ``shard_index`` of
    ``num_shards`` when ``answer`` (colocated ranks, producers), then wait until the merged file exists.
    None when the run does not regenerate."""
    if run.spec.dataset.regenerate is None:
        return None
    out = regenerated_dataset(run, feature_store_dir)
    if answer and not out.is_file():
        answer_shard(
            run, out, shard_index=shard_index, num_shards=num_shards, device=device, progress=progress
        )
    return wait_for_regenerated(run, feature_store_dir, timeout_s, progress)
