"""Feature retention: delete streamed features once no restart can need them again.

A features file may go only when its ref is durably acked *and* that ack is covered by a checkpoint:
an ack newer than the newest checkpoint is undone by ``reconcile_on_restart`` and its sample
retrained, which needs the file. So the policy runs as a step sink on rank 0: whenever a newer
checkpoint appears, it deletes the files of every ref acked at or before the checkpoint's step.

It applies to streamed features (one file per (epoch, sample), see
:mod:`specforge_trainer.features.streaming`), where no later ref shares the file. Precomputed features
(one file per sample, read again by every epoch) are the dataset's cache and are never released.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from specforge_trainer.control_plane import DataFlowController
from specforge_trainer.features.store import FeatureStoreBackend
from specforge_trainer.train.checkpoint import latest_checkpoint
from specforge_trainer.train.trainer import StepReport

_STEP = re.compile(r"_step_(\d+)$")


def checkpoint_step(folder_name: str) -> int:
    match = _STEP.search(folder_name)
    if match is None:
        raise ValueError(f"not a checkpoint folder name: {folder_name!r}")
    return int(match.group(1))


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
        self.release_covered()

    def release_covered(self) -> int:
        folder = latest_checkpoint(self.checkpoint_dir)
        if folder is None or checkpoint_step(folder.name) <= self.covered_step:
            return 0
        self.covered_step = checkpoint_step(folder.name)
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
