"""Two data-parallel ranks under torchrun on CPU (gloo): they split each global batch and train the weights
one rank trains on that global batch, to fp32 rounding (the tolerance and why it is not bitwise: see
``tests/integration/multiprocess/test_rank_count.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _support.multiprocess_runs import DATA_PARALLEL_WEIGHT_ATOL
from integration.trainer.conftest import read_metrics
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


PER_RANK_BATCH = 2


def _specforge_train(launcher: list[str], manifest: Path, out: Path, features: Path) -> None:
    specforge = Path(sys.executable).parent / "specforge"
    command = [*launcher, str(specforge), "train", "--config", str(manifest), "--out", str(out),
               "--feature-store", str(features)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("SPECFORGE_RUN_NAME", "SPECFORGE_RUN_NAMESPACE", "SPECFORGE_DEPLOYMENT_MODE"):
        env.pop(name, None)
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_two_ranks_train_under_torchrun(tmp_path: Path, make_manifest) -> None:
    # maxLength above most chats' length: the ranks' slices of a global batch have different longest samples.
    common = {"maxSteps": 6, "checkpointInterval": 3, "maxLength": 256}
    _, manifest = make_manifest("two-ranks", batchSize=PER_RANK_BATCH, **common)
    _, one_rank_manifest = make_manifest("one-rank", batchSize=2 * PER_RANK_BATCH, **common)
    out, one_rank_out = tmp_path / "out", tmp_path / "one-rank"
    # --standalone: the rendezvous store binds port 0 and hands its port to the workers (no port guessing).
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    _specforge_train(torchrun, manifest, out, tmp_path / "features")
    _specforge_train([sys.executable], one_rank_manifest, one_rank_out, tmp_path / "one-rank-features")
    metrics = read_metrics(out)
    assert [m["step"] for m in metrics] == list(range(1, 7))
    assert all(len(m["acc"]) == 3 for m in metrics)
    # Both ranks featurised their shard of the 48 samples into the shared store.
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 48
    weights = load_file(str(out / "epoch_0_step_6" / "model.safetensors"))
    one_rank_weights = load_file(str(one_rank_out / "epoch_0_step_6" / "model.safetensors"))
    assert weights.keys() == one_rank_weights.keys()
    for name, weight in one_rank_weights.items():
        torch.testing.assert_close(weights[name], weight, rtol=0, atol=DATA_PARALLEL_WEIGHT_ATOL, msg=name)
    torch.testing.assert_close(
        torch.tensor([m["step_losses"] for m in metrics]),
        torch.tensor([m["step_losses"] for m in read_metrics(one_rank_out)]),
        rtol=1e-5,
        atol=1e-7,
    )
