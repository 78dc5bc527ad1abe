"""The data schedule: deterministic, disjoint across ranks, whole global batches only."""

from __future__ import annotations

import pytest
from specforge_trainer.train.data_schedule import DataSchedule


def test_same_seed_same_order_and_epochs_differ() -> None:
    schedule = DataSchedule(num_samples=20, batch_size=3, world_size=1, seed=7)
    assert schedule.rank_steps(0, 0) == DataSchedule(20, 3, 1, 7).rank_steps(0, 0)
    assert schedule.epoch_order(0) != schedule.epoch_order(1)
    assert sorted(schedule.epoch_order(1)) == list(range(20))


def test_ranks_get_disjoint_slices_and_the_remainder_is_dropped() -> None:
    schedule = DataSchedule(num_samples=21, batch_size=2, world_size=2, seed=0)
    assert schedule.steps_per_epoch == 5
    rank0, rank1 = schedule.rank_steps(0, 0), schedule.rank_steps(0, 1)
    seen = [i for step in rank0 + rank1 for i in step]
    assert len(seen) == len(set(seen)) == 20
    order = schedule.epoch_order(0)
    assert rank0[1] == order[4:6] and rank1[1] == order[6:8]


def test_fewer_samples_than_one_global_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="fewer than one global batch"):
        DataSchedule(num_samples=3, batch_size=2, world_size=2, seed=0)
