"""Build a run's :class:`Trainer` from its manifest: target, tokenized data, draft, schedule, feature
store, control plane, the source of each step's refs.

``build_offline_trainer`` precomputes features into a directory store (each rank a shard, then a
barrier) and trains from refs; ``build_online_trainer`` runs the target in the loop. Both take the
``SpecForgeRun`` the operator takes (one definition of the fields, in ``specforge_api``) and the
deployment mode the caller resolved once (the CLI, from the manifest and the pod's env); the control
plane for that mode comes from :func:`resolve_control_plane`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from specforge_api import SpecForgeRun

from specforge_trainer.control_plane import (
    DataFlowController,
    DeploymentMode,
    resolve_control_plane,
    run_scope,
)
from specforge_trainer.features.producer import FeatureProducer
from specforge_trainer.features.ref_sources import OnlineRefs, PrecomputedRefs, ProducerRefs, RefSource
from specforge_trainer.features.store import DirectoryFeatureStore, MemoryFeatureStore
from specforge_trainer.run_data import RunData, build_draft, load_run_data
from specforge_trainer.train.distributed import ParallelContext, barrier, init_parallel
from specforge_trainer.train.trainer import StepSink, Trainer, TrainerSettings

logger = logging.getLogger(__name__)


def trainer_settings(run: SpecForgeRun, checkpoint_dir: Path) -> TrainerSettings:
    training = run.spec.training
    return TrainerSettings(
        epochs=training.epochs,
        learning_rate=training.learning_rate,
        ttt_length=training.ttt_length,
        checkpoint_interval=training.checkpoint_interval,
        keep_checkpoints=training.keep_checkpoints,
        checkpoint_dir=checkpoint_dir,
        max_steps=training.max_steps,
        max_grad_norm=training.max_grad_norm,
        weight_decay=training.weight_decay,
        lr_schedule=training.lr_schedule.value,
        warmup_ratio=training.warmup_ratio,
        mixed_precision=training.mixed_precision.value,
    )


def precompute_features(producer: FeatureProducer, context: ParallelContext) -> None:
    """Each rank computes its shard of missing features; all ranks wait until every shard exists.

    Rank 0 logs the store's size per sample: it is what bounds offline training at scale.
    """
    shard = range(context.rank, len(producer.samples), context.world_size)
    for index in shard:
        producer.ensure(index)
    barrier(context)
    if context.is_primary:
        sizes = [producer.ref(0, index).estimated_bytes for index in shard]
        logger.info(
            "feature store %s: %d samples, %.1f KiB per sample (mean)",
            getattr(producer.store, "root", "memory"),
            len(producer.samples),
            sum(sizes) / len(sizes) / 1024,
        )


def _assemble(
    run: SpecForgeRun,
    data: RunData,
    controller: DataFlowController,
    durable_ack: bool,
    ref_source: RefSource,
    out_dir: Path,
    context: ParallelContext,
    sinks: Sequence[StepSink],
) -> Trainer:
    return Trainer(
        settings=trainer_settings(run, out_dir),
        draft=build_draft(run, data),
        target_head=data.target.lm_head,
        controller=controller,
        durable_ack=durable_ack,
        ref_source=ref_source,
        schedule=data.schedule,
        context=context,
        sinks=list(sinks),
    )


def build_offline_trainer(
    run: SpecForgeRun,
    *,
    out_dir: str | Path,
    feature_store_dir: str | Path,
    mode: DeploymentMode = DeploymentMode.LOCAL_COLOCATED,
    metadata_db_path: str | Path | None = None,
    metadata_url: str | None = None,
    context: ParallelContext | None = None,
    sinks: Sequence[StepSink] = (),
) -> Trainer:
    """Offline training; in ``disaggregated`` mode producer processes supply the features and refs."""
    context = context or init_parallel()
    data = load_run_data(run, context, Path(feature_store_dir))
    controller, durable_ack = resolve_control_plane(
        mode, run_scope(run), metadata_db_path=metadata_db_path, metadata_url=metadata_url
    )
    store = DirectoryFeatureStore(feature_store_dir)
    ref_source: RefSource
    if mode is DeploymentMode.DISAGGREGATED:
        ref_source = ProducerRefs(store)
    else:
        producer = FeatureProducer(run_scope(run), data.target, data.samples, store)
        precompute_features(producer, context)
        ref_source = PrecomputedRefs(controller, producer)
    return _assemble(run, data, controller, durable_ack, ref_source, Path(out_dir), context, sinks)


def build_online_trainer(
    run: SpecForgeRun,
    *,
    out_dir: str | Path,
    mode: DeploymentMode = DeploymentMode.LOCAL_COLOCATED,
    context: ParallelContext | None = None,
    sinks: Sequence[StepSink] = (),
    feature_store_dir: str | Path | None = None,
) -> Trainer:
    """Online training: the target computes each step's features in the loop, in memory
    (``feature_store_dir`` only holds the regenerated dataset, when the run regenerates one)."""
    context = context or init_parallel()
    data = load_run_data(run, context, Path(feature_store_dir) if feature_store_dir else None)
    # The API admits online features in local_colocated only: every rank produces exactly the refs it
    # trains next. A shared durable store would dedup each sample onto whichever rank's queue claimed it
    # first, so ranks would run different numbers of batches and their all-reduces would not pair up.
    controller, durable_ack = resolve_control_plane(mode, run_scope(run))
    producer = FeatureProducer(run_scope(run), data.target, data.samples, MemoryFeatureStore())
    ref_source = OnlineRefs(controller, producer, worker_id=f"online-{context.rank}")
    return _assemble(run, data, controller, durable_ack, ref_source, Path(out_dir), context, sinks)
