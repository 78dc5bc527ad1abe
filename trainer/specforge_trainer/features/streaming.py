"""The streaming producer loop (``specforge produce`` against a durable store): features flow while ranks train.

A producer walks the run's schedule in training order (epoch by epoch, step by step) and, for each
scheduled sample of its shard, writes that (epoch, sample)'s features and commits one ref, so the
trainer can lease step ``k`` as soon as its features exist instead of after a whole shard is done.

* **Backpressure.** Before each commit the producer counts *its own* committed-but-unacked refs and
  waits while they reach ``max_unacked_refs``. Counting its own (not the run's) keeps producers from
  starving each other: a producer that is ahead cannot block the one that owns the trainer's next step.
  The bound must hold at least one global batch, or a producer owning a whole step would deadlock.
* **Resume.** A restarted producer asks the store what is already committed and skips it (a commit
  repeated anyway is deduplicated), and reuses a features file that already exists instead of
  recomputing it. Refs committed but not yet acked count against the bound again.
* **Files per (epoch, sample).** Each ref has its own features file, so retention
  (:mod:`specforge_trainer.features.retention`) can delete an epoch's file once its ack is covered by a
  checkpoint without racing a later epoch's ref to the same sample. The tensors are identical across
  epochs (the target is deterministic), so the loss curve is the same as with one file per sample.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from specforge_api import SpecForgeRun

from specforge_trainer.control_plane import DataFlowController, SampleRef, run_scope
from specforge_trainer.features.producer import FeatureProducer
from specforge_trainer.features.store import DirectoryFeatureStore
from specforge_trainer.train.data_schedule import DataSchedule

DEFAULT_MAX_UNACKED_REFS = 64


@dataclass(frozen=True)
class StreamingProduceResult:
    computed: int  # features computed by this incarnation
    committed: int  # refs this incarnation committed (fresh in the store)
    skipped: int  # refs already committed by an earlier incarnation
    waited_s: float  # time spent paused by backpressure


def epoch_feature_key(epoch: int, index: int) -> str:
    return f"e{epoch:04d}-sample-{index:06d}"


def scheduled_in_order(schedule: DataSchedule, epochs: int) -> Iterator[tuple[int, int]]:
    """Every (epoch, dataset index) the ranks train, in the order the trainer needs them."""
    for epoch in range(epochs):
        per_rank = [schedule.rank_steps(epoch, rank) for rank in range(schedule.world_size)]
        for step in range(schedule.steps_per_epoch):
            for rank_steps in per_rank:
                for index in rank_steps[step]:
                    yield epoch, index


class StreamingProducer:
    """One producer's shard, streamed into the feature store and the control plane."""

    def __init__(
        self,
        producer: FeatureProducer,
        controller: DataFlowController,
        *,
        worker_id: str,
        max_unacked_refs: int = DEFAULT_MAX_UNACKED_REFS,
        poll_interval_s: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_unacked_refs < 1:
            raise ValueError(f"max_unacked_refs must be at least 1, got {max_unacked_refs}")
        if not isinstance(producer.store, DirectoryFeatureStore):
            raise ValueError(
                "a streaming producer writes to a directory feature store shared with the trainer"
            )
        self.producer = producer
        self.controller = controller
        self.worker_id = worker_id
        self.max_unacked_refs = max_unacked_refs
        self.poll_interval_s = poll_interval_s
        self._sleep = sleep
        self._unacked: deque[str] = deque()  # this producer's committed refs, oldest first

    def ref(self, epoch: int, index: int) -> SampleRef:
        store = self.producer.store
        return replace(
            self.producer.ref(epoch, index), feature_uri=store.uri_for(epoch_feature_key(epoch, index))
        )

    def run(self, work: Iterator[tuple[int, int]]) -> StreamingProduceResult:
        store = self.controller.store
        already = set(store.all_committed_ids())
        computed = committed = skipped = 0
        waited = 0.0
        for epoch, index in work:
            ref = self.ref(epoch, index)
            if ref.sample_id in already:
                skipped += 1
                if not store.is_acked(ref.sample_id):
                    self._unacked.append(ref.sample_id)
                continue
            waited += self._wait_for_room()
            computed += self._ensure_features(epoch, index)
            committed += len(self.controller.commit_samples(self.worker_id, [ref]))
            self._unacked.append(ref.sample_id)
        return StreamingProduceResult(computed, committed, skipped, waited)

    def _ensure_features(self, epoch: int, index: int) -> int:
        key = epoch_feature_key(epoch, index)
        if self.producer.store.contains(key):
            return 0
        self.producer.store.put(key, self.producer.compute(index))
        return 1

    def _wait_for_room(self) -> float:
        """Block while this producer's committed-but-unacked refs fill the bound; the seconds waited."""
        started = time.monotonic()
        while True:
            while self._unacked and self.controller.store.is_acked(self._unacked[0]):
                self._unacked.popleft()
            if len(self._unacked) < self.max_unacked_refs:
                return time.monotonic() - started
            # Acks need not come in commit order (several ranks, a retrained step): look past the head.
            self._unacked = deque(s for s in self._unacked if not self.controller.store.is_acked(s))
            if len(self._unacked) < self.max_unacked_refs:
                return time.monotonic() - started
            self._sleep(self.poll_interval_s)


def produce_streaming(
    run: SpecForgeRun,
    producer: FeatureProducer,
    controller: DataFlowController,
    *,
    trainer_world_size: int,
    shard_index: int,
    num_shards: int,
    max_unacked_refs: int = DEFAULT_MAX_UNACKED_REFS,
) -> StreamingProduceResult:
    """Stream shard ``shard_index`` of ``num_shards`` (dataset index modulo) for every epoch of ``run``."""
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index must be in [0, {num_shards}), got {shard_index}")
    if trainer_world_size < 1:
        raise ValueError(f"trainer world size must be at least 1, got {trainer_world_size}")
    training = run.spec.training
    schedule = DataSchedule(len(producer.samples), training.batch_size, trainer_world_size, training.seed)
    if max_unacked_refs < schedule.global_batch:
        raise ValueError(
            f"max unacked refs ({max_unacked_refs}) must hold at least one global batch "
            f"({schedule.global_batch}), or a producer that owns a whole step would wait forever"
        )
    streamer = StreamingProducer(
        producer, controller, worker_id=f"producer-{shard_index}", max_unacked_refs=max_unacked_refs
    )
    trained_steps = training.epochs * schedule.steps_per_epoch
    if training.max_steps:
        trained_steps = min(trained_steps, training.max_steps)
    scheduled = itertools.islice(
        scheduled_in_order(schedule, training.epochs), trained_steps * schedule.global_batch
    )
    return streamer.run((epoch, index) for epoch, index in scheduled if index % num_shards == shard_index)


def stream_shard_of_run(
    run: SpecForgeRun,
    *,
    feature_store_dir: str | Path,
    controller: DataFlowController,
    trainer_world_size: int,
    shard_index: int,
    num_shards: int,
    max_unacked_refs: int = DEFAULT_MAX_UNACKED_REFS,
) -> StreamingProduceResult:
    """What a producer process runs: load the target and data, then stream its shard."""
    from specforge_trainer.run_data import load_run_data
    from specforge_trainer.train.distributed import ParallelContext, single_process_device

    context = ParallelContext(rank=0, world_size=1, device=single_process_device())
    data = load_run_data(run, context, Path(feature_store_dir))
    producer = FeatureProducer(
        run_scope(run), data.target, data.samples, DirectoryFeatureStore(feature_store_dir)
    )
    return produce_streaming(
        run,
        producer,
        controller,
        trainer_world_size=trainer_world_size,
        shard_index=shard_index,
        num_shards=num_shards,
        max_unacked_refs=max_unacked_refs,
    )
