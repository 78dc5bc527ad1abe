"""Helpers for trainer integration tests: small real runs of the built-in target on bundled data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from specforge_operator.api import SpecForgeRun, load_run_manifest
from specforge_trainer.resources import builtin_dataset_path

ManifestFactory = Callable[..., tuple[SpecForgeRun, Path]]


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """The first 48 bundled conversations: enough for a few real steps, fast to featurise."""
    lines = builtin_dataset_path("chat-mini").read_text().splitlines()[:48]
    path = tmp_path / "chat-small.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def make_manifest(tmp_path: Path, small_dataset: Path) -> ManifestFactory:
    """Write a run manifest (small defaults, ``training`` overrides) and parse it with the API models."""

    def make(name: str = "it", mode: str = "local_colocated", **training: Any) -> tuple[SpecForgeRun, Path]:
        settings = {"epochs": 1, "batchSize": 2, "maxLength": 64, "tttLength": 3, "seed": 3,
                    "draftVocabSize": 256, "checkpointInterval": 4, "keepCheckpoints": 2, **training}  # fmt: skip
        document = {
            "apiVersion": "specforge.io/v1alpha1",
            "kind": "SpecForgeRun",
            "metadata": {"name": name},
            "spec": {
                "deploymentMode": mode,
                "targetModel": {"builtin": "tiny-llama"},
                "dataset": {"path": str(small_dataset)},
                "training": settings,
            },
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document))
        return load_run_manifest(path), path

    return make


def read_metrics(out_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True)
def one_cpu_thread() -> Any:
    """What ``specforge`` does on CPU: one intra-op thread (tests share the cores with other processes)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
