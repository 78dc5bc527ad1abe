"""Helpers for trainer integration tests: small real runs of the built-in target on bundled data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _support.multiprocess_runs import write_dataset, write_manifest
from specforge_api import SpecForgeRun

ManifestFactory = Callable[..., tuple[SpecForgeRun, Path]]


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """The first 48 bundled conversations: enough for a few real steps, fast to featurise."""
    return write_dataset(tmp_path, conversations=48)


@pytest.fixture
def make_manifest(tmp_path: Path, small_dataset: Path) -> ManifestFactory:
    """Write a small run manifest (``training`` overrides) and parse it with the API models."""

    def make(name: str = "it", mode: str = "local_colocated", **training: Any) -> tuple[SpecForgeRun, Path]:
        return write_manifest(tmp_path, name, mode, small_dataset, **training)

    return make


@pytest.fixture
def cpu_context() -> Any:
    """One rank on the CPU: how the in-process tests run a trainer."""
    import torch
    from specforge_trainer.train.distributed import ParallelContext

    return ParallelContext(rank=0, world_size=1, device=torch.device("cpu"))


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
