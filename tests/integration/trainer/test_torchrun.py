"""Two data-parallel ranks under torchrun on CPU (gloo): they split each global batch and stay in sync."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from integration.trainer.conftest import read_metrics
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_ranks_train_under_torchrun(tmp_path: Path, make_manifest) -> None:
    _, manifest = make_manifest(maxSteps=6, checkpointInterval=3)
    specforge = Path(sys.executable).parent / "specforge"
    out = tmp_path / "out"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1",
               f"--master-port={_free_port()}", str(specforge), "train", "--config", str(manifest), "--out", str(out),
               "--feature-store", str(tmp_path / "features")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("SPECFORGE_RUN_NAME", "SPECFORGE_RUN_NAMESPACE", "SPECFORGE_DEPLOYMENT_MODE"):
        env.pop(name, None)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == list(range(1, 7))
    assert all(len(m["acc"]) == 3 for m in metrics)
    # Both ranks featurised their shard of the 48 samples into the shared store.
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 48
    weights = load_file(str(out / "epoch_0_step_6" / "model.safetensors"))
    assert torch.isfinite(weights["fc.weight"]).all()
