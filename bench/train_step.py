"""Step time of the DataFlow trainer against a bare torch loop on the same model and batches.

The trainer path is the full one a ``local_colocated`` run takes (ref enqueue, named lease through
the controller, tensor check, feature load from the safetensors store, collate, step, release); the
bare loop runs the identical objective and optimizer on the same batches, pre-collated in memory (no
control plane, no loader). Both start from the same seed, alternate in rounds so CPU contention from
other processes hits them alike, and are compared on the median step time. Target ratio for
``local_colocated``: <= 1.05.

    python bench/train_step.py [--steps 40] [--rounds 3] [--manifest examples/local-colocated.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from specforge_api import load_run_manifest
from specforge_trainer.build import build_offline_trainer
from specforge_trainer.features.producer import feature_key
from specforge_trainer.train.batching import collate_features
from specforge_trainer.train.distributed import ParallelContext
from specforge_trainer.train.objective import eagle3_objective
from specforge_trainer.train.trainer import StepReport, build_lr_scheduler, build_optimizer

ROOT = Path(__file__).resolve().parents[1]


class StepClock:
    """A step sink recording when each optimizer step's report arrives (end-to-end loop time)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_start(self, restored: Sequence[StepReport]) -> None:
        self.stamps = [time.perf_counter()]

    def on_step(self, report: StepReport) -> None:
        self.stamps.append(time.perf_counter())

    def on_end(self, reports: Sequence[StepReport]) -> None:
        return None

    def step_times(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:], strict=False)]


def trainer_round(manifest: Path, steps: int, workdir: Path, features: Path) -> tuple[list[float], object]:
    run = load_run_manifest(manifest)
    training = run.spec.training.model_copy(update={"max_steps": steps, "checkpoint_interval": 10**6})
    run = run.model_copy(update={"spec": run.spec.model_copy(update={"training": training})})
    clock = StepClock()
    trainer = build_offline_trainer(
        run,
        out_dir=workdir / f"out-{time.monotonic_ns()}",
        feature_store_dir=features,
        context=ParallelContext(rank=0, world_size=1, device=torch.device("cpu")),
        sinks=[clock],
    )
    trainer.train()
    return clock.step_times(), trainer


def bare_round(trainer, steps: int, features: Path) -> list[float]:
    """The same draft (fresh from the same seed), objective, optimizer and schedule; batches pre-collated."""
    draft, schedule, settings = trainer.draft, trainer.schedule, trainer.settings
    from safetensors.torch import load_file

    batches = []
    for indices in schedule.rank_steps(0, 0)[:steps]:
        samples = [load_file(str(features / f"{feature_key(i)}.safetensors")) for i in indices]
        batches.append(collate_features(samples, trainer.target_head, torch.device("cpu")))
    parameters = [p for p in draft.parameters() if p.requires_grad]
    optimizer = build_optimizer(parameters, settings)
    scheduler = build_lr_scheduler(optimizer, settings, min(steps, len(batches)))
    times = []
    for batch in batches:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        eagle3_objective(draft, batch, settings.ttt_length).loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "examples" / "local-colocated.yaml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        features = workdir / "features"
        trainer_times: list[float] = []
        bare_times: list[float] = []
        batch_size = 1
        for _ in range(args.rounds):
            times, trainer = trainer_round(args.manifest, args.steps, workdir, features)
            trainer_times += times[2:]  # the first steps include one-off allocations
            _, fresh = trainer_round(args.manifest, 1, workdir, features)  # a fresh draft, same seed
            bare_times += bare_round(fresh, args.steps, features)[2:]
            batch_size = trainer.schedule.batch_size
    trainer_median, bare_median = statistics.median(trainer_times), statistics.median(bare_times)
    print(
        f"steps measured: {len(trainer_times)} trainer, {len(bare_times)} bare ({args.rounds} alternating rounds)"
    )
    print(f"bare torch loop : {bare_median * 1e3:7.2f} ms/step  {batch_size / bare_median:7.1f} samples/s")
    print(
        f"specforge trainer: {trainer_median * 1e3:7.2f} ms/step  {batch_size / trainer_median:7.1f} samples/s"
    )
    print(f"ratio trainer/bare: {trainer_median / bare_median:.3f}  (target <= 1.05 for local_colocated)")


if __name__ == "__main__":
    main()
