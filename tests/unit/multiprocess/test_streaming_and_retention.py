"""Pure logic of the streaming producer and of feature retention, on the in-memory store.

The producer's target model is replaced by a stand-in that returns a tiny tensor (the model is not
what these tests check: backpressure, resume and training-order commits are); feature files are real.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from _support.manifests import minimal_run
from specforge_api import parse_run_manifest
from specforge_trainer.control_plane import DataFlowController, InMemoryMetadataStore, SampleRef
from specforge_trainer.features.producer import sample_id
from specforge_trainer.features.retention import ReleaseCheckpointedFeatures
from specforge_trainer.features.store import DirectoryFeatureStore
from specforge_trainer.features.streaming import (
    StreamingProducer,
    epoch_feature_key,
    produce_streaming,
    scheduled_in_order,
)
from specforge_trainer.train.checkpoint import COMPLETE_FILE, checkpoint_step
from specforge_trainer.train.data_schedule import DataSchedule


class TinyProducer:
    """Just enough of FeatureProducer for the streaming loop: a store, compute and ref."""

    def __init__(self, store: DirectoryFeatureStore) -> None:
        self.store = store
        self.computed: list[int] = []

    def compute(self, index: int) -> dict[str, torch.Tensor]:
        self.computed.append(index)
        return {"x": torch.full((2,), float(index))}

    def ref(self, epoch: int, index: int) -> SampleRef:
        return SampleRef(sample_id(epoch, index), "run", self.store.uri_for(f"sample-{index}"), ("x",))


def test_training_order_is_step_major_and_covers_the_schedule() -> None:
    schedule = DataSchedule(num_samples=11, batch_size=2, world_size=2, seed=5)
    order = list(scheduled_in_order(schedule, epochs=2))
    expected_steps = [
        [(epoch, i) for rank in range(2) for i in schedule.rank_steps(epoch, rank)[step]]
        for epoch in range(2)
        for step in range(schedule.steps_per_epoch)
    ]
    assert order == [pair for step in expected_steps for pair in step]
    assert len(order) == 2 * 2 * 4  # 11 samples, global batch 4: two steps' worth dropped per epoch


def test_backpressure_holds_unacked_refs_at_the_bound_and_resume_skips_committed(tmp_path: Path) -> None:
    controller = DataFlowController("run", metadata_store=InMemoryMetadataStore())
    work = [(0, i) for i in range(6)]
    high_water = []

    def trainer_acks_oldest(_: float) -> None:  # called while the producer waits: play the trainer
        pending = [sid for sid in controller.store.all_committed_ids() if not controller.store.is_acked(sid)]
        high_water.append(len(pending))
        controller.store.record_train_ack(pending[:1], global_step=1, optimizer_durable=False)

    producer = TinyProducer(DirectoryFeatureStore(tmp_path))
    streamer = StreamingProducer(
        producer, controller, worker_id="p", max_unacked_refs=2, sleep=trainer_acks_oldest
    )
    result = streamer.run(iter(work[:4]))
    assert (result.computed, result.committed, result.skipped) == (4, 4, 0)
    assert max(high_water) == 2  # never more than the bound committed and unacked
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{epoch_feature_key(0, i)}.safetensors" for i in range(4)
    }

    restarted = StreamingProducer(
        producer, controller, worker_id="p", max_unacked_refs=2, sleep=trainer_acks_oldest
    )
    result = restarted.run(iter(work))
    assert (result.computed, result.committed, result.skipped) == (2, 2, 4)
    assert controller.store.all_committed_ids() == [sample_id(0, i) for i in range(6)]
    assert producer.computed == list(range(6))  # nothing computed twice


def test_bound_must_be_positive(tmp_path: Path) -> None:
    controller = DataFlowController("run", metadata_store=InMemoryMetadataStore())
    with pytest.raises(ValueError, match="max_unacked_refs must be at least 1"):
        StreamingProducer(
            TinyProducer(DirectoryFeatureStore(tmp_path)), controller, worker_id="p", max_unacked_refs=0
        )


def test_a_bound_of_one_ref_is_allowed(tmp_path: Path) -> None:
    controller = DataFlowController("run", metadata_store=InMemoryMetadataStore())
    streamer = StreamingProducer(
        TinyProducer(DirectoryFeatureStore(tmp_path)), controller, worker_id="p", max_unacked_refs=1
    )
    assert streamer.run(iter([(0, 0)])).committed == 1


def test_a_resumed_producer_counts_its_committed_unacked_refs_against_the_bound(tmp_path: Path) -> None:
    controller = DataFlowController("run", metadata_store=InMemoryMetadataStore())
    producer = TinyProducer(DirectoryFeatureStore(tmp_path))
    first = StreamingProducer(producer, controller, worker_id="p", max_unacked_refs=2)
    assert first.run(iter([(0, 0), (0, 1)])).committed == 2  # then the producer dies, nothing acked
    waits = []

    def trainer_acks_oldest(_: float) -> None:
        pending = [sid for sid in controller.store.all_committed_ids() if not controller.store.is_acked(sid)]
        waits.append(len(pending))
        time.sleep(0.02)  # the trainer's step
        controller.store.record_train_ack(pending[:1], global_step=1, optimizer_durable=False)

    resumed = StreamingProducer(
        producer, controller, worker_id="p", max_unacked_refs=2, sleep=trainer_acks_oldest
    )
    result = resumed.run(iter([(0, 0), (0, 1), (0, 2)]))
    assert (result.computed, result.committed, result.skipped) == (1, 1, 2)
    assert waits == [2]  # the two refs of the first life fill the bound: wait for an ack first
    assert result.waited_s >= 0.02  # the time paused is reported


def test_a_producer_with_room_never_waits(tmp_path: Path) -> None:
    controller = DataFlowController("run", metadata_store=InMemoryMetadataStore())
    streamer = StreamingProducer(
        TinyProducer(DirectoryFeatureStore(tmp_path)), controller, worker_id="p", max_unacked_refs=4
    )
    assert 0 <= streamer.run(iter([(0, i) for i in range(4)])).waited_s < 0.5  # no pause to report


class SampledTinyProducer(TinyProducer):
    def __init__(self, store: DirectoryFeatureStore, num_samples: int) -> None:
        super().__init__(store)
        self.samples = list(range(num_samples))


@pytest.mark.parametrize("max_unacked_refs", [3, 4])
def test_the_bound_must_hold_one_global_batch(tmp_path: Path, max_unacked_refs: int) -> None:
    """A producer whose refs make up a whole step waits for acks of that step: a bound below one global
    batch would wait forever, so it is refused; exactly one global batch is enough."""
    run = parse_run_manifest(minimal_run("r", training={"batchSize": 2, "epochs": 1}))
    controller = DataFlowController("run", metadata_store=InMemoryMetadataStore())
    producer = SampledTinyProducer(DirectoryFeatureStore(tmp_path), num_samples=4)

    def stream() -> int:
        return produce_streaming(
            run,
            producer,
            controller,
            trainer_world_size=2,  # global batch 2 x 2 = 4: one step, no wait with a bound of 4
            shard_index=0,
            num_shards=1,
            max_unacked_refs=max_unacked_refs,
        ).committed

    if max_unacked_refs < 4:
        with pytest.raises(
            ValueError, match=r"max unacked refs \(3\) must hold at least one global batch \(4\)"
        ):
            stream()
    else:
        assert stream() == 4


def _checkpoint(root: Path, name: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / COMPLETE_FILE).write_text("{}")


def test_retention_releases_only_acks_a_fallback_resume_no_longer_needs(tmp_path: Path) -> None:
    store = DirectoryFeatureStore(tmp_path / "features")
    controller = DataFlowController("run", metadata_store=InMemoryMetadataStore())
    refs = []
    for i in range(4):
        store.put(f"f{i}", {"x": torch.zeros(1)})
        refs.append(SampleRef(f"s{i}", "run", store.uri_for(f"f{i}"), ("x",)))
    controller.commit_samples("p", refs)
    controller.store.record_train_ack(["s0", "s1"], global_step=1, optimizer_durable=False)
    controller.store.record_train_ack(["s2"], global_step=3, optimizer_durable=False)
    checkpoints = tmp_path / "out"
    retention = ReleaseCheckpointedFeatures(controller, store, checkpoints)

    assert retention.release_covered() == 0  # no checkpoint yet: a restart would retrain them all
    (checkpoints / "epoch_0_step_9").mkdir(parents=True)  # being written: no completeness record
    assert retention.release_covered() == 0
    _checkpoint(checkpoints, "epoch_0_step_2")
    assert retention.release_covered() == 2  # alone, the newest is the floor
    assert sorted(p.name for p in store.root.iterdir()) == ["f2.safetensors", "f3.safetensors"]
    _checkpoint(checkpoints, "epoch_0_step_3")
    assert retention.release_covered() == 0  # a torn step 3 falls back to step 2, which needs s2
    assert retention.release_covered(newest=True) == 1  # the end of training: step 3 is the last word
    assert [p.name for p in store.root.iterdir()] == ["f3.safetensors"]
    _checkpoint(checkpoints, "epoch_0_step_4")
    assert retention.release_covered() == 0  # s3 was never acked: kept
    assert [p.name for p in store.root.iterdir()] == ["f3.safetensors"]


def test_checkpoint_step_parses_folder_names() -> None:
    assert checkpoint_step(Path("epoch_3_step_120")) == 120
    assert checkpoint_step(Path("latest")) is None
