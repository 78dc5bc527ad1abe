"""`specforge run` starts what the pods would: two trainer pods of one rank each, or one pod of two ranks
under torchrun (gpusPerReplica: 2). Both are world size 2 on the same schedule, so they must train the
same weights; a producer count that is not the trainer count must still feed every rank."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _support.multiprocess_runs import specforge, write_dataset, write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _final_weights(out: Path) -> bytes:
    newest = max(out.glob("epoch_*_step_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    return (newest / "model.safetensors").read_bytes()


def _with_trainer(manifest: Path, replicas: int, gpus: int) -> Path:
    document = yaml.safe_load(manifest.read_text())
    document["spec"]["trainer"] = {"replicas": replicas, "gpusPerReplica": gpus}
    manifest.write_text(yaml.safe_dump(document))
    return manifest


@pytest.mark.parametrize("mode", ["dataflow_colocated", "disaggregated"])
def test_two_pods_of_one_rank_and_one_pod_of_two_ranks_train_the_same_weights(tmp_path, mode):
    dataset = write_dataset(tmp_path, conversations=16)
    weights = {}
    for name, replicas, gpus in (("pods", 2, 0), ("torchrun", 1, 2)):
        _, manifest = write_manifest(tmp_path, name, mode, dataset, producers=3)
        _with_trainer(manifest, replicas, gpus)
        done = specforge("run", manifest, "--out", tmp_path / name, timeout_s=600)
        assert done.returncode == 0, done.stderr[-3000:]
        weights[name] = _final_weights(tmp_path / name)
    if mode == "dataflow_colocated":
        # Under torchrun the pod's one log holds both ranks; two pods have one log each.
        assert (tmp_path / "torchrun" / "logs" / "trainer-0.log").exists()
        assert not (tmp_path / "torchrun" / "logs" / "trainer-1.log").exists()
    assert weights["pods"] == weights["torchrun"]
