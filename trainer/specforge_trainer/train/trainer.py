"""The training loop: lease a step's refs, train the draft, step the optimizer, ack, checkpoint, report.

``train()`` reads top to bottom: restore, reconcile the control plane, then per epoch and step:
prepare refs → lease them (named, in schedule order) → :meth:`Trainer.train_step` → checkpoint →
ack → report. ``durable_ack`` (from :func:`resolve_control_plane`) decides whether consumed refs are
acked in the durable store at the optimizer boundary or just released from the in-process queue;
every leased ref passes ``assert_no_tensors`` either way.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from specforge_trainer.control_plane import DataFlowController, SampleRef, assert_no_tensors
from specforge_trainer.features.ref_sources import RefSource, load_features, step_sample_ids
from specforge_trainer.models.draft import Eagle3DraftModel
from specforge_trainer.train.batching import collate_features, longest_sample
from specforge_trainer.train.checkpoint import prune_checkpoints, restore_newest_intact, save_checkpoint
from specforge_trainer.train.data_schedule import DataSchedule
from specforge_trainer.train.distributed import (
    ParallelContext,
    all_reduce_max,
    all_reduce_sum,
    average_gradients,
)
from specforge_trainer.train.lr_schedule import ScheduleKind, lr_multiplier
from specforge_trainer.train.objective import acceptance_length, eagle3_objective
from specforge_trainer.train.step_gc import DEFAULT_INTERVAL, StepBoundaryGC


@dataclass(frozen=True)
class TrainerSettings:
    epochs: int
    learning_rate: float
    ttt_length: int
    checkpoint_interval: int
    keep_checkpoints: int
    checkpoint_dir: Path
    max_steps: int | None = None
    # Upstream SpecForge's recipe (see spec.training): clipping, AdamW decay, warmup + cosine, bf16 on CUDA.
    max_grad_norm: float = 0.5  # 0: no clipping
    weight_decay: float = 0.0
    lr_schedule: ScheduleKind = "cosine"
    warmup_ratio: float = 0.015
    mixed_precision: str = "bf16"  # bf16 or fp32; bf16 autocasts on CUDA only, CPU stays fp32
    lease_timeout_s: float = 600.0
    gc_interval: int = DEFAULT_INTERVAL  # steps between the loop's garbage collections (0: automatic)

    def __post_init__(self) -> None:
        if self.ttt_length < 1:
            raise ValueError(f"ttt_length must be at least 1, got {self.ttt_length}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")


@dataclass(frozen=True)
class StepReport:
    step: int
    total_steps: int
    epoch: int
    loss: float
    step_losses: list[float]
    accuracy: list[float]
    acceptance_length: float
    samples_per_s: float
    learning_rate: float
    step_time_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "loss": self.loss,
            "step_losses": self.step_losses,
            "acc": self.accuracy,
            "acceptance_length": self.acceptance_length,
            "samples_per_s": self.samples_per_s,
            "lr": self.learning_rate,
            "step_time_s": self.step_time_s,
        }


class CheckpointWatcher(Protocol):
    """Told of each checkpoint the primary rank saves; may keep some from retention."""

    def pinned(self) -> Collection[str]: ...

    def on_checkpoint(self, folder: Path, step: int) -> None: ...


class StepSink(Protocol):
    def on_start(self, restored: Sequence[StepReport]) -> None: ...

    def on_step(self, report: StepReport) -> None: ...

    def on_end(self, reports: Sequence[StepReport]) -> None: ...


@dataclass
class TrainerCounters:
    step: int = 0
    epoch: int = 0
    steps_done_in_epoch: int = 0

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "epoch": self.epoch, "steps_done_in_epoch": self.steps_done_in_epoch}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step, self.epoch, self.steps_done_in_epoch = (
            state["step"],
            state["epoch"],
            state["steps_done_in_epoch"],
        )


def build_optimizer(parameters: Sequence[torch.nn.Parameter], settings: TrainerSettings) -> torch.optim.AdamW:
    """AdamW over the fp32 master weights (autocast computes in bf16 but never casts the weights)."""
    return torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, settings: TrainerSettings, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lr_multiplier(total_steps=total_steps, warmup_ratio=settings.warmup_ratio, kind=settings.lr_schedule),
    )


def compute_autocast(settings: TrainerSettings, device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA when asked; a disabled context elsewhere (CPU training stays fp32)."""
    enabled = settings.mixed_precision == "bf16" and device.type == "cuda"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


@dataclass
class Trainer:
    settings: TrainerSettings
    draft: Eagle3DraftModel
    target_head: torch.nn.Module
    controller: DataFlowController
    durable_ack: bool
    ref_source: RefSource
    schedule: DataSchedule
    context: ParallelContext
    sinks: list[StepSink] = field(default_factory=list)
    checkpoint_watchers: list[CheckpointWatcher] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.trainer_id = f"trainer-{self.context.rank}"
        self.parameters = [p for p in self.draft.parameters() if p.requires_grad]
        planned = self.settings.epochs * self.schedule.steps_per_epoch
        self.total_steps = min(planned, self.settings.max_steps) if self.settings.max_steps else planned
        self.optimizer = build_optimizer(self.parameters, self.settings)
        self.scheduler = build_lr_scheduler(self.optimizer, self.settings, self.total_steps)
        self.counters = TrainerCounters()
        self.reports: list[StepReport] = []

    # -- the loop ------------------------------------------------------------------------------
    def train(self) -> list[StepReport]:
        resumed_from = self.restore()
        if self.durable_ack:
            self.controller.reconcile_on_restart(trainer_id=self.trainer_id, resume_global_step=resumed_from)
            if resumed_from:
                self.ack_checkpointed_step(resumed_from)
        for sink in self.sinks:
            sink.on_start(self.reports)
        with (
            self.controller.leases_kept_alive(self.trainer_id),  # a slow step keeps its refs
            StepBoundaryGC(self.settings.gc_interval) as collector,
        ):
            self._train_remaining_steps(collector)
        for sink in self.sinks:
            sink.on_end(self.reports)
        return self.reports

    def _train_remaining_steps(self, collector: StepBoundaryGC) -> None:
        while self.should_continue_training():
            epoch = self.counters.epoch
            steps = self.schedule.rank_steps(epoch, self.context.rank)[self.counters.steps_done_in_epoch :]
            steps = steps[: self.total_steps - self.counters.step]
            self.ref_source.prepare_epoch(epoch, steps)
            for position, indices in enumerate(steps):
                refs = self.lease(epoch, indices)
                report = self.train_step(refs)
                self.counters.step += 1
                self.counters.steps_done_in_epoch += 1
                self.reports.append(report)  # before the checkpoint, which carries the reports so far
                saved = self.maybe_checkpoint()
                following = steps[position + 1] if position + 1 < len(steps) else None
                self.finish_refs(
                    refs,
                    optimizer_durable=saved,
                    next_ids=step_sample_ids(epoch, following) if following is not None else None,
                )
                collector.step_done(self.counters.step)
                for sink in self.sinks:
                    sink.on_step(report)
            self.counters.epoch += 1
            self.counters.steps_done_in_epoch = 0

    def should_continue_training(self) -> bool:
        return self.counters.epoch < self.settings.epochs and self.counters.step < self.total_steps

    def lease(self, epoch: int, indices: Sequence[int]) -> list[SampleRef]:
        self.ref_source.prepare_step(epoch, indices)
        wanted = step_sample_ids(epoch, indices)
        refs = self.controller.lease_named_refs(
            self.trainer_id, wanted, timeout_s=self.settings.lease_timeout_s
        )
        if len(refs) != len(wanted):
            missing = sorted(set(wanted) - {ref.sample_id for ref in refs})
            raise TimeoutError(f"refs not available after {self.settings.lease_timeout_s}s: {missing[:5]}")
        for ref in refs:
            assert_no_tensors(ref)
        return refs

    def train_step(self, refs: Sequence[SampleRef]) -> StepReport:
        started = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        samples = load_features(self.ref_source, refs)
        # Every rank pads to the global batch's longest sample: each rank's B*T-normalised loss is then
        # the global batch's over its rows, and averaging the ranks' gradients gives the one-rank gradient.
        length = all_reduce_max(longest_sample(samples), self.context)
        batch = collate_features(samples, self.target_head, self.context.device, length)
        with compute_autocast(self.settings, self.context.device):
            output = eagle3_objective(self.draft, batch, self.settings.ttt_length)
        output.loss.backward()
        average_gradients(self.parameters, self.context)
        if self.settings.max_grad_norm > 0:  # after averaging: every rank clips the same gradient
            torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.max_grad_norm)
        learning_rate = float(self.scheduler.get_last_lr()[0])
        self.optimizer.step()
        self.scheduler.step()
        stats = torch.cat(
            [output.loss.detach().reshape(1), output.step_losses, output.correct, output.counted]
        )
        stats = all_reduce_sum(stats.double(), self.context)
        ttt = self.settings.ttt_length
        loss, step_losses = stats[0] / self.context.world_size, stats[1 : 1 + ttt] / self.context.world_size
        accuracy = (stats[1 + ttt : 1 + 2 * ttt] / stats[1 + 2 * ttt :].clamp(min=1)).tolist()
        elapsed = time.perf_counter() - started
        return StepReport(
            step=self.counters.step + 1,
            total_steps=self.total_steps,
            epoch=self.counters.epoch,
            loss=float(loss),
            step_losses=step_losses.tolist(),
            accuracy=accuracy,
            acceptance_length=acceptance_length(accuracy),
            samples_per_s=len(refs) * self.context.world_size / elapsed,
            learning_rate=learning_rate,
            step_time_s=elapsed,
        )

    def finish_refs(
        self, refs: Sequence[SampleRef], *, optimizer_durable: bool, next_ids: Sequence[str] | None = None
    ) -> None:
        """Ack (or release) a step's refs; ``next_ids``, the next step's, are leased in the same store call."""
        ids = [ref.sample_id for ref in refs]
        if self.durable_ack:
            self.controller.ack_train_refs(
                self.trainer_id,
                ids,
                global_step=self.counters.step,
                optimizer_durable=optimizer_durable,
                lease_next=next_ids,
            )
        else:
            self.controller.release_consumed(ids)
        for ref in refs:
            self.ref_source.consumed(ref)

    def ack_checkpointed_step(self, step: int) -> None:
        """Ack the refs of the step the checkpoint ends at: a kill between saving it and the ack left
        them pending, yet their update is in the weights, so they must not be trained again."""
        epoch, in_epoch = divmod(step - 1, self.schedule.steps_per_epoch)
        indices = self.schedule.rank_steps(epoch, self.context.rank)[in_epoch]
        ids = [s for s in step_sample_ids(epoch, indices) if self.controller.store.is_committed(s)]
        self.controller.ack_train_refs(self.trainer_id, ids, global_step=step, optimizer_durable=True)

    # -- checkpoints ---------------------------------------------------------------------------
    def maybe_checkpoint(self) -> bool:
        step = self.counters.step
        if step % self.settings.checkpoint_interval and step != self.total_steps:
            return False
        if self.context.is_primary:
            folder = save_checkpoint(
                self.settings.checkpoint_dir,
                epoch=self.counters.epoch,
                step=step,
                draft=self.draft,
                training_state=self.state_dict(),
                keep=self.settings.keep_checkpoints,
                pinned=self._pinned_checkpoints(),
            )
            if self.checkpoint_watchers:
                for watcher in self.checkpoint_watchers:
                    watcher.on_checkpoint(folder, step)
                # A watcher may have moved its pin: what it held before goes unless it is recent.
                prune_checkpoints(
                    self.settings.checkpoint_dir,
                    keep=self.settings.keep_checkpoints,
                    pinned=self._pinned_checkpoints(),
                )
        return True

    def _pinned_checkpoints(self) -> set[str]:
        return {name for watcher in self.checkpoint_watchers for name in watcher.pinned()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "counters": self.counters.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "control_plane": self.controller.state_dict(),
            "reports": [report.to_json() for report in self.reports],
        }

    def restore(self) -> int | None:
        """Resume from the newest intact checkpoint; returns its global step (None: fresh start)."""
        restored = restore_newest_intact(self.settings.checkpoint_dir, self.draft)
        if restored is None:
            return None
        _, state = restored
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        self.controller.load_state_dict(state["control_plane"])
        self.counters.load_state_dict(state["counters"])
        if self.counters.steps_done_in_epoch >= self.schedule.steps_per_epoch:
            self.counters.epoch += 1
            self.counters.steps_done_in_epoch = 0
        self.reports = [
            StepReport(**_report_fields(r), total_steps=self.total_steps) for r in state["reports"]
        ]
        return self.counters.step


def _report_fields(saved: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": saved["step"],
        "epoch": saved["epoch"],
        "loss": saved["loss"],
        "step_losses": saved["step_losses"],
        "accuracy": saved["acc"],
        "acceptance_length": saved["acceptance_length"],
        "samples_per_s": saved["samples_per_s"],
        "learning_rate": saved["lr"],
        "step_time_s": saved["step_time_s"],
    }
