"""Disaggregated vs colocated training: samples/s with 1, 2 and 4 producer processes against one trainer,
and the trainer's idle fraction waiting for features, against local_colocated, in one run.

Every variant trains the same schedule (same seed, data, model) in this process with one intra-op
thread; only where features come from differs:

* ``local_colocated``: features precomputed before the timed loop (the colocated upper bound);
* ``disaggregated xN``: N ``specforge produce`` processes stream features and refs through a real
  ``redis-server`` while the trainer trains; producers start with the trainer, so their start-up
  (loading the target) is inside the end-to-end figure;
* ``disaggregated x1 (features ready)``: the producer finishes before the timed loop, so producers are
  not the bottleneck and what remains is the trainer's disaggregated path (Redis leases and acks,
  reading per-epoch feature files, retention) against the colocated one.

Figures: end-to-end samples/s (train() start to end); steady-state step rate (from the first step
to the last, once features flow); idle fraction = 1 - (time inside train_step) / wall. Ratios are
against local_colocated. On a 2-core machine the producers and the trainer share the cores, so more
producers mostly compete with the trainer for CPU: read the numbers with that in mind.

Usage: python bench/disagg.py [--conversations 96] [--epochs 1] [--producers 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _support.multiprocess_runs import write_dataset, write_manifest
from specforge_trainer.build import build_offline_trainer
from specforge_trainer.control_plane import DeploymentMode
from specforge_trainer.local.launch import producer_specs
from specforge_trainer.local.redis_server import LocalRedisServer
from specforge_trainer.train.distributed import ParallelContext
from specforge_trainer.train.trainer import StepReport

CPU = ParallelContext(rank=0, world_size=1, device=torch.device("cpu"))


class StepClock:
    """A step sink that timestamps the start of training and the end of every step."""

    def __init__(self) -> None:
        self.started = 0.0
        self.step_ends: list[float] = []
        self.step_times: list[float] = []

    def on_start(self, restored: Sequence[StepReport]) -> None:
        self.started = time.perf_counter()

    def on_step(self, report: StepReport) -> None:
        self.step_ends.append(time.perf_counter())
        self.step_times.append(report.step_time_s)

    def on_end(self, reports: Sequence[StepReport]) -> None:
        return None


@dataclass
class Measured:
    name: str
    samples: int
    wall_s: float
    steady_steps_per_s: float
    idle_fraction: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.wall_s


def measure(name: str, clock: StepClock, ended: float, samples: int) -> Measured:
    wall = ended - clock.started
    steady = (len(clock.step_ends) - 1) / (clock.step_ends[-1] - clock.step_ends[0])
    return Measured(name, samples, wall, steady, 1.0 - sum(clock.step_times) / wall)


def run_colocated(folder: Path, dataset: Path, epochs: int, label: str) -> Measured:
    run, _ = write_manifest(
        folder, "bench-local", "local_colocated", dataset, epochs=epochs, checkpointInterval=1000
    )
    clock = StepClock()
    trainer = build_offline_trainer(
        run, out_dir=folder / label, feature_store_dir=folder / "local-features", context=CPU, sinks=[clock]
    )
    trainer.train()
    ended = time.perf_counter()
    return measure(
        f"local_colocated ({label})", clock, ended, len(clock.step_ends) * run.spec.training.batch_size
    )


def run_disaggregated(
    folder: Path, dataset: Path, epochs: int, producers: int, redis_url: str, *, features_ready: bool = False
) -> Measured:
    name = f"bench-disagg-{producers}{'-ready' if features_ready else ''}"
    run, manifest = write_manifest(
        folder, name, "disaggregated", dataset, producers=producers, epochs=epochs, checkpointInterval=1000
    )
    features = folder / name / "features"
    specs = producer_specs(run, manifest, features, redis_url, max_unacked_refs=1024)
    procs = [
        subprocess.Popen(
            list(spec.argv),
            env={**os.environ, **spec.env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for spec in specs
    ]
    try:
        if features_ready:  # producers are not the bottleneck: what is left is the trainer's own path
            for proc in procs:
                proc.wait(timeout=600)
        clock = StepClock()
        trainer = build_offline_trainer(
            run,
            out_dir=folder / name,
            feature_store_dir=features,
            mode=DeploymentMode.DISAGGREGATED,
            metadata_url=redis_url,
            context=CPU,
            sinks=[clock],
        )
        trainer.train()
        ended = time.perf_counter()
        trainer.controller.close()
    finally:
        for proc in procs:
            proc.wait(timeout=120)
    samples = len(clock.step_ends) * run.spec.training.batch_size
    label = f"disaggregated x{producers}" + (" (features ready)" if features_ready else "")
    return measure(label, clock, ended, samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--producers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="specforge-bench-disagg-") as temporary:
        folder = Path(temporary)
        dataset = write_dataset(folder, args.conversations)
        results = [run_colocated(folder, dataset, args.epochs, "first")]
        with LocalRedisServer(folder / "redis") as redis:
            results += [run_disaggregated(folder, dataset, args.epochs, n, redis.url) for n in args.producers]
            results.append(run_disaggregated(folder, dataset, args.epochs, 1, redis.url, features_ready=True))
        results.append(run_colocated(folder, dataset, args.epochs, "last"))
    # Colocated runs first and last: the machine's load drifts over minutes; the faster one is the
    # baseline, so every ratio below is the conservative one.
    base = max((r for r in results if r.name.startswith("local")), key=lambda r: r.steady_steps_per_s)
    ready = next(r for r in results if "ready" in r.name)
    print(
        f"{'variant':<36} {'samples/s':>10} {'x colocated':>12} {'steady steps/s':>15} {'x colocated':>12} {'idle':>7}"
    )
    for r in results:
        print(
            f"{r.name:<36} {r.samples_per_s:>10.1f} {r.samples_per_s / base.samples_per_s:>12.2f} "
            f"{r.steady_steps_per_s:>15.2f} {r.steady_steps_per_s / base.steady_steps_per_s:>12.2f} "
            f"{r.idle_fraction:>7.1%}"
        )
    streaming = [
        r.steady_steps_per_s / base.steady_steps_per_s for r in results if r.name.endswith(("1", "2", "4"))
    ]
    print(f"median steady ratio, producers streaming concurrently: {statistics.median(streaming):.2f}")
    print(
        f"steady ratio, features ready (target >= 0.9): {ready.steady_steps_per_s / base.steady_steps_per_s:.2f}"
    )


if __name__ == "__main__":
    main()
