"""The rank count is a deployment choice, not a training one: a ``dataflow_colocated`` run with two trainer
ranks of per-rank batch ``b`` trains the weights a one-rank run of batch ``2b`` trains (both durable, on the
redis-server ``specforge run`` starts, features on one store as the run-owned volume shares them).

Refs are leased by name from the data schedule (``DataSchedule.rank_steps``), which gives rank ``r`` the
``r``-th slice of each global batch of one seeded permutation, so both runs train the same global batches in
the same order whatever order the ranks reach the store in. Bitwise equality is not expected: two ranks sum
their halves' gradients in an all-reduce where one rank sums the whole batch in one reduction, and float
addition is not associative; AdamW then divides each gradient element by its own RMS, which can enlarge
that rounding where an element's gradient is near zero. Measured: at most 1.2e-7 here (7e-7 under
torchrun); ``DATA_PARALLEL_WEIGHT_ATOL`` is above that. Normalising each rank's loss by its own padded
length instead of the global batch's moved weights by up to 5e-3.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from _support.multiprocess_runs import (
    DATA_PARALLEL_WEIGHT_ATOL,
    specforge,
    step_losses,
    write_dataset,
    write_manifest,
)
from safetensors.torch import load_file

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GLOBAL_BATCH = 4


def _final_weights(out: Path) -> dict[str, torch.Tensor]:
    newest = max(out.glob("epoch_*_step_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    return load_file(str(newest / "model.safetensors"))


def _train(folder: Path, name: str, dataset: Path, ranks: int) -> Path:
    # maxLength well above most chats' length, so ranks' batches have different longest samples.
    _, manifest = write_manifest(
        folder, name, "dataflow_colocated", dataset, batchSize=GLOBAL_BATCH // ranks, maxLength=256
    )
    document = yaml.safe_load(manifest.read_text())
    document["spec"]["trainer"] = {"replicas": ranks, "gpusPerReplica": 0}
    manifest.write_text(yaml.safe_dump(document))
    done = specforge("run", manifest, "--out", folder / name, timeout_s=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / name


def test_two_ranks_train_the_weights_of_one_rank_with_the_same_global_batch(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path, conversations=16)
    one = _train(tmp_path, "one-rank", dataset, ranks=1)
    two = _train(tmp_path, "two-ranks", dataset, ranks=2)
    one_weights, two_weights = _final_weights(one), _final_weights(two)
    assert one_weights.keys() == two_weights.keys()
    for name, weight in one_weights.items():
        torch.testing.assert_close(
            two_weights[name], weight, rtol=0, atol=DATA_PARALLEL_WEIGHT_ATOL, msg=name
        )
    # The logged losses are the global batch's too, not the mean of per-rank losses.
    torch.testing.assert_close(
        torch.tensor(step_losses(two)), torch.tensor(step_losses(one)), rtol=1e-5, atol=1e-7
    )
