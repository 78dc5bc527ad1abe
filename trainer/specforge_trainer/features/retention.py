"""Feature retention: delete streamed features once no restart can need them again.

A features file may go only when its ref is durably acked *and* that ack is covered by a checkpoint:
an ack newer than the newest checkpoint is undone by ``reconcile_on_restart`` and its sample
retrained, which needs the file; and a resume falls back to the checkpoint before the newest when the
newest is torn, so the acks between the two must keep their files too. So the policy runs as a step
sink on rank 0: whenever a newer checkpoint appears, it deletes the files of every ref acked at or
before the step of the one before it.

It applies to streamed features (one file per (epoch, sample), see
:mod:`specforge_trainer.features.streaming`), where no later ref shares the file. Precomputed features
(one file per sample, read again by every epoch) are the dataset's cache and are never released.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from specforge_trainer.control_plane import DataFlowController
from specforge_trainer.features.store import FeatureStoreBackend
from specforge_trainer.train.checkpoint import checkpoint_folders, checkpoint_step
from specforge_trainer.train.trainer import StepReport


class ReleaseCheckpointedFeatures:
    """A :class:`StepSink` that releases features of acks covered by the newest checkpoint."""

    def __init__(
        self, controller: DataFlowController, store: FeatureStoreBackend, checkpoint_dir: Path
    ) -> None:
        self.controller = controller
        self.store = store
        self.checkpoint_dir = checkpoint_dir
        self.covered_step = -1
        self.released: set[str] = set()

    def on_start(self, restored: Sequence[StepReport]) -> None:
        self.release_covered()  # what a killed predecessor acked and checkpointed but did not release

    def on_step(self, report: StepReport) -> None:
        self.release_covered()

    def on_end(self, reports: Sequence[StepReport]) -> None:
        # Training is over and its last checkpoint was just written and synced by this process: no
        # resume will fall back past it, so everything it covers goes.
        self.release_covered(newest=True)

    def release_covered(self, *, newest: bool = False) -> int:
        floor = self.fallback_floor(newest=newest)
        if floor is None or floor <= self.covered_step:
            return 0
        self.covered_step = floor
        store = self.controller.store
        count = 0
        for sample_id, step in store.acked_steps().items():
            if step > self.covered_step or sample_id in self.released:
                continue
            ref = store.get_committed(sample_id)
            if ref is not None:
                self.store.release(ref)
                count += 1
            self.released.add(sample_id)
        return count

    def fallback_floor(self, *, newest: bool = False) -> int | None:
        """The step of the checkpoint a resume falls back to when the newest one is torn (the one before
        it; the newest when it is alone, or when ``newest``): no ack after it is released, so that resume
        has its features."""
        folders = checkpoint_folders(self.checkpoint_dir)
        if not folders:
            return None
        step = checkpoint_step(folders[-2] if len(folders) > 1 and not newest else folders[-1])
        assert step is not None  # checkpoint_folders lists checkpoint names only
        return step
