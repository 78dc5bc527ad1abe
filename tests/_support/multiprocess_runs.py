"""Helpers for multi-process run tests: small manifests, the run's processes, and its durable evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from specforge_api import SpecForgeRun, load_run_manifest
from specforge_trainer.features.producer import sample_id
from specforge_trainer.resources import builtin_dataset_path
from specforge_trainer.train.data_schedule import DataSchedule

#: Small enough that a run's processes start and finish in seconds on 2 cores.
SMALL_TRAINING = {"epochs": 2, "batchSize": 2, "maxLength": 64, "tttLength": 3, "seed": 3,
                  "draftVocabSize": 256, "checkpointInterval": 3, "keepCheckpoints": 2}  # fmt: skip
#: spec.dataset.heldOutConversations of these manifests: the dataset's last lines, for ``specforge eval``.
HELD_OUT = 4
#: How far a data-parallel run's final fp32 weights may be from a one-rank run's on the same global batches
#: (why not bitwise, and the figures: tests/integration/multiprocess/test_rank_count.py).
DATA_PARALLEL_WEIGHT_ATOL = 1e-5


def write_dataset(folder: Path, conversations: int = 16) -> Path:
    """``conversations`` bundled chats to train on, then ``HELD_OUT`` more that training leaves out."""
    lines = builtin_dataset_path("chat-mini").read_text().splitlines()[: conversations + HELD_OUT]
    path = folder / "chat-small.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def write_manifest(
    folder: Path, name: str, mode: str, dataset: Path, *, producers: int = 2, **training: Any
) -> tuple[SpecForgeRun, Path]:
    spec: dict[str, Any] = {
        "deploymentMode": mode,
        "targetModel": {"builtin": "tiny-llama"},
        "dataset": {"path": str(dataset), "heldOutConversations": HELD_OUT},
        "training": {**SMALL_TRAINING, **training},
    }
    if mode == "disaggregated":
        spec["producers"] = {"replicas": producers, "gpusPerReplica": 0}
        spec["featureStore"] = {"path": "/features", "volume": {"hostPath": {"path": str(folder / "hp")}}}
    document = {"apiVersion": "specforge.io/v1alpha1", "kind": "SpecForgeRun", "metadata": {"name": name},
                "spec": spec}  # fmt: skip
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_run_manifest(path), path


def specforge(
    *args: str | Path, env: dict[str, str] | None = None, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "specforge_trainer.cli", *(str(a) for a in args)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def step_losses(out: Path) -> list[list[float]]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step_losses"] for line in lines]


def scheduled_ack_steps(run: SpecForgeRun, num_samples: int, world_size: int = 1) -> dict[str, int]:
    """Each (epoch, sample) the schedule trains, with the global step that trains it: what the acks
    of a run that lost nothing and trained nothing twice must say."""
    training = run.spec.training
    schedule = DataSchedule(num_samples, training.batch_size, world_size, training.seed)
    expected = {}
    for epoch in range(training.epochs):
        per_rank = [schedule.rank_steps(epoch, rank) for rank in range(world_size)]
        for step in range(schedule.steps_per_epoch):
            global_step = epoch * schedule.steps_per_epoch + step + 1
            for steps in per_rank:
                for index in steps[step]:
                    expected[sample_id(epoch, index)] = global_step
    return expected
