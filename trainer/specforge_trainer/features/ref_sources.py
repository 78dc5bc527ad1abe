"""Where a rank's refs come from, per feature mode; the trainer loop is the same for all three.

* :class:`PrecomputedRefs` (offline): features are already in the feature store; each epoch's refs
  are enqueued up front through the controller (the producers' commit path).
* :class:`OnlineRefs` (online): the target runs in the loop; a step's features are computed just
  before it, kept in memory, committed, and released once the loader has consumed them.
* :class:`ProducerRefs` (disaggregated): producer processes commit the refs; the trainer only leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from specforge_trainer.control_plane import DataFlowController, SampleRef
from specforge_trainer.features.producer import FeatureProducer, sample_id
from specforge_trainer.features.store import FeatureStoreBackend


class RefSource(Protocol):
    store: FeatureStoreBackend

    def prepare_epoch(self, epoch: int, steps: Sequence[Sequence[int]]) -> None: ...

    def prepare_step(self, epoch: int, indices: Sequence[int]) -> None: ...

    def consumed(self, ref: SampleRef) -> None: ...


class PrecomputedRefs:
    def __init__(self, controller: DataFlowController, producer: FeatureProducer) -> None:
        self.controller = controller
        self.producer = producer
        self.store = producer.store

    def prepare_epoch(self, epoch: int, steps: Sequence[Sequence[int]]) -> None:
        refs = [self.producer.ref(epoch, index) for indices in steps for index in indices]
        self.controller.enqueue_offline_refs(refs)

    def prepare_step(self, epoch: int, indices: Sequence[int]) -> None:
        return None

    def consumed(self, ref: SampleRef) -> None:
        return None  # the file is the dataset cache: later epochs read it again


class OnlineRefs:
    def __init__(self, controller: DataFlowController, producer: FeatureProducer, worker_id: str) -> None:
        self.controller = controller
        self.producer = producer
        self.store = producer.store
        self.worker_id = worker_id

    def prepare_epoch(self, epoch: int, steps: Sequence[Sequence[int]]) -> None:
        return None

    def prepare_step(self, epoch: int, indices: Sequence[int]) -> None:
        for index in indices:
            self.producer.ensure(index)
        self.controller.commit_samples(self.worker_id, [self.producer.ref(epoch, index) for index in indices])

    def consumed(self, ref: SampleRef) -> None:
        self.store.release(ref)


class ProducerRefs:
    def __init__(self, store: FeatureStoreBackend) -> None:
        self.store = store

    def prepare_epoch(self, epoch: int, steps: Sequence[Sequence[int]]) -> None:
        return None

    def prepare_step(self, epoch: int, indices: Sequence[int]) -> None:
        return None

    def consumed(self, ref: SampleRef) -> None:
        return None


def step_sample_ids(epoch: int, indices: Sequence[int]) -> list[str]:
    return [sample_id(epoch, index) for index in indices]


def load_features(source: RefSource, refs: Sequence[SampleRef]) -> list[dict[str, torch.Tensor]]:
    return [source.store.load(ref) for ref in refs]
