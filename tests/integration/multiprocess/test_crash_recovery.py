"""Exactly-once under crashes: SIGKILL a trainer rank, a producer and Redis itself, restart them, and the
run ends as if nothing had happened.

A disaggregated run (two streaming producer processes, one trainer process, a real ``redis-server``
with AOF) is attacked at points drawn from a per-seed RNG: the trainer once a random number of samples
is acked, a producer a random moment later, Redis (``kill -9``, then restarted on its AOF) once more
samples are acked. Each victim is restarted at once. The verdict comes from durable evidence only:

* the store's acks: every scheduled (epoch, sample) acked, at exactly the global step the schedule
  trains it (none lost; an ack at another step would mean it was trained in another step, i.e. twice);
* the final checkpoint's loss curve equals a crash-free run's bit for bit (an update lost or applied
  twice would change every later step).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _support.multiprocess_runs import (
    scheduled_ack_steps,
    specforge,
    step_losses,
    write_dataset,
    write_manifest,
)
from specforge_trainer.control_plane import RedisMetadataStore
from specforge_trainer.local.launch import producer_specs, trainer_specs
from specforge_trainer.local.redis_server import LocalRedisServer
from specforge_trainer.local.supervisor import ProcessSpec, tail

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CONVERSATIONS = 24
KILL_SEEDS = [11, 12, 13]


class RunProcesses:
    """The run's processes, each restartable under its own name (what a pod's restart policy does)."""

    def __init__(self, specs: list[ProcessSpec], log_dir: Path) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name in self.specs:
            self.start(name)

    def start(self, name: str) -> None:
        spec = self.specs[name]
        with open(self.log_dir / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(
                list(spec.argv), env={**os.environ, **spec.env}, stdout=log, stderr=subprocess.STDOUT
            )

    def kill_and_restart(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()
        self.start(name)

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for name, proc in self.procs.items():
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            assert code == 0, f"{name} exited {code}:\n{tail(self.log_dir / f'{name}.log', 30)}"

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def wait_until(condition: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def acked(url: str, run_id: str) -> int:
    with RedisMetadataStore(url, run_id=run_id) as store:
        return store.acked_count()


@pytest.fixture(scope="module")
def crash_free_curve(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[float]]]:
    folder = tmp_path_factory.mktemp("reference")
    dataset = write_dataset(folder, CONVERSATIONS)
    _, manifest = write_manifest(folder, "crash", "disaggregated", dataset)
    done = specforge("run", manifest, "--out", folder / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    return dataset, step_losses(folder / "out")


@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_sigkill_of_trainer_producer_and_redis_loses_nothing_and_trains_nothing_twice(
    seed: int, tmp_path: Path, crash_free_curve: tuple[Path, list[list[float]]]
) -> None:
    dataset, reference = crash_free_curve
    rng = random.Random(seed)
    run, manifest = write_manifest(tmp_path, "crash", "disaggregated", dataset)
    expected = scheduled_ack_steps(run, CONVERSATIONS)
    redis = LocalRedisServer(tmp_path / "redis").start()
    out, features = tmp_path / "out", tmp_path / "out" / "features"
    specs = producer_specs(run, manifest, features, redis.url, max_unacked_refs=4)
    specs += trainer_specs(run, manifest, out, features, redis.url)
    processes = RunProcesses(specs, tmp_path)
    try:
        trainer_kill_at = rng.randint(1, len(expected) // 2)
        wait_until(lambda: acked(redis.url, run.name) >= trainer_kill_at)
        processes.kill_and_restart("trainer-0")

        time.sleep(rng.uniform(0.0, 2.0))
        processes.kill_and_restart(f"producer-{rng.randrange(2)}")

        redis_kill_at = rng.randint(trainer_kill_at, len(expected) - 4)
        wait_until(lambda: acked(redis.url, run.name) >= redis_kill_at)
        redis.kill()
        time.sleep(rng.uniform(0.1, 1.0))
        redis.start()

        processes.wait(timeout_s=240)
    finally:
        processes.stop()
        redis.stop()
    redis.start()
    try:
        with RedisMetadataStore(redis.url, run_id=run.name) as store:
            assert store.acked_steps() == expected
    finally:
        redis.close()
    assert step_losses(out) == reference
