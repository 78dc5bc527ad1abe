"""Control-plane benchmark: its share of a training-like step, and ref lifecycles per second, per store.

One run, everything measured side by side on the same machine:

1. Step overhead. A training-like step run as the trainer runs it (lease the step's scheduled refs,
   fetch their features, compute, ack at the optimizer boundary while leasing the next step's refs in
   the same store call) for each store, against the same loop with no control plane at all. Each
   store runs in its own phase, the disk synced between phases; within it, blocks of consecutive
   steps alternate with blocks of the bare loop so machine noise hits both alike; medians compared.
   Targets: NoOp <= 1 % over none; Redis on loopback <= 2 ms p50 per step for 64 refs.
   Both parts run under the trainer's garbage-collection schedule (``step_gc``: set-up frozen,
   collections between steps, their cost inside the lifecycle timing); the lifecycle part also
   shows the strict Redis store under Python's automatic collector, for comparison.
2. Lifecycles/s: commit + lease + ack in batches, from one Python process, for each store (each ack
   leases the next batch in the same store call, as the trainer does), the median of a few rounds
   interleaved across stores (each after a disk sync); next to
   the raw ``redis-benchmark -P 32`` SET rate of the same Redis server. Target: >= 50,000/s (Redis).

Usage: python bench/control_plane.py [--steps 300] [--batch 64] [--lifecycles 100000] [--lifecycle-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _support.control_plane import make_ref
from specforge_trainer.control_plane import (
    DataFlowController,
    InMemoryMetadataStore,
    MetadataStore,
    NoOpMetadataStore,
    RedisMetadataStore,
    SQLiteMetadataStore,
)
from specforge_trainer.local.redis_server import LocalRedisServer
from specforge_trainer.train.step_gc import DEFAULT_INTERVAL, StepBoundaryGC

RUN = "run-a"
STRICT_REDIS = "redis (fsync always)"


def store_builders(
    tmp: Path, redis_url: str, redis_relaxed_url: str
) -> dict[str, Callable[[], MetadataStore]]:
    counter = iter(range(10**6))
    return {
        "noop": NoOpMetadataStore,
        "memory": InMemoryMetadataStore,
        "sqlite": lambda: SQLiteMetadataStore(tmp / f"bench-{next(counter)}.db", run_id=RUN),
        STRICT_REDIS: lambda: RedisMetadataStore(redis_url, run_id=f"{RUN}-{next(counter)}"),
        "redis (everysec, relaxed)": lambda: RedisMetadataStore(
            redis_relaxed_url, run_id=f"{RUN}-{next(counter)}", durability="relaxed"
        ),
    }


class Step:
    """A fixed training-like step on pre-loaded "features": fetch (index) + compute (matmuls)."""

    def __init__(self, batch: int) -> None:
        torch.manual_seed(0)
        torch.set_num_threads(1)
        self.features = torch.randn(batch, 128, 128)
        self.weight = torch.randn(128, 128)

    def __call__(self, indices: list[int]) -> float:
        x = self.features[torch.tensor(indices) % len(self.features)]
        for _ in range(4):
            x = torch.tanh(x @ self.weight)
        return float(x.sum())


def step_overheads(
    builders: dict[str, Callable[[], MetadataStore]], steps: int, batch: int, block: int = 10
) -> None:
    """Each store in its own phase, the disk synced between phases (one store's background writeback
    never lands in another's steps). Within a phase, blocks of ``block`` consecutive steps, as a
    trainer runs them, alternate with blocks of the loop without a control plane: its baseline,
    which machine noise hits alike."""
    step = Step(batch)
    schedule = [[make_ref(i).sample_id for i in range(r * batch, (r + 1) * batch)] for r in range(steps)]
    print(f"\n## Step overhead ({steps} steps, {batch} refs per step)")
    print(f"{'store':28} {'none ms':>8} {'step ms':>8} {'vs none':>9} {'cp p50 ms':>10} {'cp p99 ms':>10}")
    for name, build in builders.items():
        store = build()
        ctl = DataFlowController(getattr(store, "run_id", RUN), metadata_store=store)
        ctl.commit_samples("producer", [make_ref(i, ctl.run_id) for i in range(steps * batch)])
        os.sync()
        bare: list[float] = []
        with_cp: list[float] = []
        cp_times: list[float] = []
        with StepBoundaryGC(DEFAULT_INTERVAL) as collector:
            for first in range(0, steps, block):
                rounds = range(first, min(first + block, steps))
                for rnd in rounds:
                    t0 = time.perf_counter()
                    step(list(range(rnd * batch, (rnd + 1) * batch)))
                    bare.append(time.perf_counter() - t0)
                for rnd in rounds:
                    t0 = time.perf_counter()
                    cp_times.append(trainer_step(ctl, step, schedule, rnd))
                    with_cp.append(time.perf_counter() - t0)
                    collector.step_done(rnd + 1)  # between steps, as the trainer collects
        store.close()
        base, med = statistics.median(bare), statistics.median(with_cp)
        cp50, cp99 = statistics.median(cp_times), statistics.quantiles(cp_times, n=100)[98]
        print(
            f"{name:28} {base * 1e3:8.2f} {med * 1e3:8.2f} {(med / base - 1) * 100:+8.2f}% "
            f"{cp50 * 1e3:10.3f} {cp99 * 1e3:10.3f}"
        )


def trainer_step(ctl: DataFlowController, step: Step, schedule: list[list[str]], rnd: int) -> float:
    """One step as the trainer runs it: its scheduled refs, and the next step's leased with the ack.
    Answers the time spent in the control plane."""
    c0 = time.perf_counter()
    refs = ctl.lease_named_refs("rank0", schedule[rnd])
    c1 = time.perf_counter()
    step([int(r.sample_id[1:]) for r in refs])
    c2 = time.perf_counter()
    ctl.ack_train_refs(
        "rank0",
        [r.sample_id for r in refs],
        global_step=rnd + 1,
        optimizer_durable=True,
        lease_next=schedule[rnd + 1] if rnd + 1 < len(schedule) else None,
    )
    c3 = time.perf_counter()
    assert len(refs) == len(schedule[rnd])
    return (c1 - c0) + (c3 - c2)


def lifecycles(
    builders: dict[str, Callable[[], MetadataStore]],
    n: int,
    batch: int,
    rounds: int,
    between_rounds: Callable[[], None],
) -> dict[str, float]:
    """Median rate per store over ``rounds`` rounds, stores interleaved round-robin so machine noise
    hits them alike, each round a fresh store on servers emptied by ``between_rounds``; every
    round's rate is printed. Every store runs under the trainer's collection schedule; the strict
    Redis store also runs under Python's automatic collector."""
    variants = [(name, build, DEFAULT_INTERVAL) for name, build in builders.items()]
    variants.append((f"{STRICT_REDIS}, auto gc", builders[STRICT_REDIS], 0))
    rates: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(rounds):
        between_rounds()
        for name, build, gc_interval in variants:
            os.sync()  # the previous store's writeback is not this store's cost (fsync waits behind it)
            rates[name].append(lifecycle_rate(build(), n, batch, gc_interval))
    print(
        f"\n## Ref lifecycles per second (commit + lease + ack, batches of {batch}, {n} refs, one process; "
        f"median of {rounds} interleaved rounds)"
    )
    for name, values in rates.items():
        each = ", ".join(f"{v:,.0f}" for v in values)
        print(f"{name:28} {statistics.median(values):12,.0f} /s   ({each})")
    return {name: statistics.median(values) for name, values in rates.items()}


def lifecycle_rate(store: MetadataStore, n: int, batch: int, gc_interval: int) -> float:
    run_id = getattr(store, "run_id", RUN)
    ctl = DataFlowController(run_id, metadata_store=store)
    refs = [make_ref(i, run_id) for i in range(n)]  # serialised inside commit: part of the lifecycle
    batches = [refs[start : start + batch] for start in range(0, n, batch)]
    with StepBoundaryGC(gc_interval) as collector:
        t0 = time.perf_counter()
        # As a trainer runs: each ack leases the next batch, committed meanwhile, in the same store call.
        ctl.commit_samples("p", batches[0])
        leased = ctl.lease_named_refs("rank0", [r.sample_id for r in batches[0]])
        for step, following in enumerate([*batches[1:], None], start=1):
            if following is not None:
                ctl.commit_samples("p", following)
            ctl.ack_train_refs(
                "rank0",
                [r.sample_id for r in leased],
                global_step=step,
                optimizer_durable=True,
                lease_next=None if following is None else [r.sample_id for r in following],
            )
            collector.step_done(step)
            if following is not None:
                leased = ctl.lease_named_refs("rank0", [r.sample_id for r in following])
                assert len(leased) == len(following)
        elapsed = time.perf_counter() - t0
    store.close()
    return n / elapsed


def redis_set_rate(port: int) -> float:
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "set", "-n", "300000", "-P", "32", "-q", "--csv"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return float(out.strip().splitlines()[-1].split(",")[1].strip('"'))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lifecycles", type=int, default=100_000)
    parser.add_argument("--lifecycle-batch", type=int, default=1000)
    parser.add_argument("--lifecycle-rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("redis-benchmark") is None:
        sys.exit("redis-benchmark not found: run `make system-deps`")
    tmp = Path(tempfile.mkdtemp(prefix="specforge-bench-"))
    with (
        LocalRedisServer(tmp / "redis-always", appendfsync="always") as strict,
        LocalRedisServer(tmp / "redis-everysec", appendfsync="everysec") as relaxed,
    ):
        builders = store_builders(tmp, strict.url, relaxed.url)
        print(f"# control-plane benchmark — torch {torch.__version__}, redis-server on loopback, {tmp}")
        step_overheads(builders, args.steps, args.batch)
        clients = [redis.Redis.from_url(server.url) for server in (strict, relaxed)]

        def empty_servers() -> None:  # every round starts from the same (empty) Redis
            for client in clients:
                client.flushall()

        rates = lifecycles(
            builders, args.lifecycles, args.lifecycle_batch, args.lifecycle_rounds, empty_servers
        )
        set_rate = redis_set_rate(strict.port)
        print(f"\nredis-benchmark -P 32 SET on the same server (fsync always): {set_rate:,.0f} /s")
        for name in (STRICT_REDIS, "redis (everysec, relaxed)"):
            print(f"{name}: lifecycles/s ÷ raw SET/s = {rates[name] / set_rate:.3f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
