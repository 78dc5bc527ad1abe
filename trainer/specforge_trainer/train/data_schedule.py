"""The data schedule: which samples each rank trains at each optimizer step of each epoch.

A pure function of (seed, epoch, dataset size, global batch, rank), so every deployment mode, every
restart and every producer agrees on it without asking the metadata store for an order. The last
incomplete global batch of an epoch is dropped, so all ranks take the same number of steps (their
collectives must match).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DataSchedule:
    num_samples: int
    batch_size: int  # per rank
    world_size: int
    seed: int

    def __post_init__(self) -> None:
        if self.steps_per_epoch < 1:
            raise ValueError(
                f"the dataset has {self.num_samples} samples, fewer than one global batch "
                f"({self.batch_size} per rank x {self.world_size} ranks)"
            )

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    @property
    def steps_per_epoch(self) -> int:
        return self.num_samples // self.global_batch

    def epoch_order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=generator).tolist()

    def rank_steps(self, epoch: int, rank: int) -> list[list[int]]:
        """Per step of ``epoch``, the dataset indices ``rank`` trains on."""
        order = self.epoch_order(epoch)
        steps = []
        for step in range(self.steps_per_epoch):
            start = step * self.global_batch + rank * self.batch_size
            steps.append(order[start : start + self.batch_size])
        return steps
