"""Offline feature precompute (``specforge produce``): features into the store, refs into the control plane.

A producer computes its shard of the dataset (``index % num_shards == shard_index``) and, when the
run has a durable metadata store, commits one ref per scheduled (epoch, sample) so trainer ranks can
lease them by name. Without a durable store (``local_colocated``) it only fills the feature store,
which ``specforge train`` then reuses instead of recomputing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from specforge_api import SpecForgeRun

from specforge_trainer.control_plane import DataFlowController, run_scope
from specforge_trainer.features.producer import FeatureProducer
from specforge_trainer.features.store import DirectoryFeatureStore
from specforge_trainer.run_data import load_run_data
from specforge_trainer.train.distributed import ParallelContext, single_process_device


@dataclass(frozen=True)
class ProduceResult:
    produced: int
    committed: int
    bytes_per_sample: float


def produce_features(
    run: SpecForgeRun,
    *,
    feature_store_dir: str | Path,
    controller: DataFlowController | None,
    trainer_world_size: int,
    shard_index: int = 0,
    num_shards: int = 1,
) -> ProduceResult:
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"shard index must be in [0, {num_shards}), got {shard_index}")
    context = ParallelContext(rank=0, world_size=1, device=single_process_device())
    data = load_run_data(run, context, Path(feature_store_dir))
    producer = FeatureProducer(
        run_scope(run), data.target, data.samples, DirectoryFeatureStore(feature_store_dir)
    )
    mine = [index for index in range(len(data.samples)) if index % num_shards == shard_index]
    for index in mine:
        producer.ensure(index)
    committed = 0
    if controller is not None:
        schedule = replace(data.schedule, world_size=trainer_world_size)
        owned = set(mine)
        for epoch in range(run.spec.training.epochs):
            scheduled = [
                i
                for rank in range(trainer_world_size)
                for step in schedule.rank_steps(epoch, rank)
                for i in step
            ]
            refs = [producer.ref(epoch, index) for index in scheduled if index in owned]
            committed += len(controller.commit_samples(f"producer-{shard_index}", refs))
    sizes = [producer.ref(0, index).estimated_bytes for index in mine]
    return ProduceResult(len(mine), committed, sum(sizes) / max(1, len(sizes)))
