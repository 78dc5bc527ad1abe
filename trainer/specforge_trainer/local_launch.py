"""Run a durable-mode SpecForgeRun on one machine as the processes its pods would be.

``specforge run`` hands ``dataflow_colocated`` and ``disaggregated`` manifests here. It starts a local
``redis-server`` (AOF, ``appendfsync always``, data under the output directory, so running the same
manifest into the same directory resumes) unless a store URL is given, then ``spec.producers.replicas``
producer processes (disaggregated) and ``spec.trainer.replicas`` trainer ranks, all under one
:class:`Supervisor`. Ranks are plain processes with the environment ``torch.distributed`` reads
(``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``PORT``), the same as torchrun or a PyTorchJob sets.
Ctrl-C or the first failing process stops them all, and the error names that process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from specforge_operator.api import SpecForgeRun

from specforge_trainer.control_plane import DeploymentMode
from specforge_trainer.local_redis import LocalRedisServer, free_port
from specforge_trainer.supervisor import ProcessSpec, Supervisor

METADATA_URL_ENV = "SPECFORGE_METADATA_URL"


def run_mode(run: SpecForgeRun) -> DeploymentMode:
    return DeploymentMode.parse(run.spec.deployment_mode.value)


def _cli(*args: str | Path | int) -> list[str]:
    return [sys.executable, "-m", "specforge_trainer.cli", *(str(a) for a in args)]


def producer_specs(
    run: SpecForgeRun, manifest: Path, feature_dir: Path, metadata_url: str, max_unacked_refs: int | None
) -> list[ProcessSpec]:
    if run_mode(run) is not DeploymentMode.DISAGGREGATED:
        return []
    count = run.spec.producers.replicas if run.spec.producers else 1
    world_size = run.spec.trainer.replicas
    bound = ["--max-unacked-refs", str(max_unacked_refs)] if max_unacked_refs else []
    return [
        ProcessSpec(
            name=f"producer-{index}",
            argv=_cli(
                "produce",
                "--config",
                manifest,
                "--feature-store",
                feature_dir,
                *bound,
                "--shard-index",
                index,
                "--num-shards",
                count,
                "--trainer-world-size",
                world_size,
            ),
            env={METADATA_URL_ENV: metadata_url},
        )
        for index in range(count)
    ]


def trainer_specs(
    run: SpecForgeRun, manifest: Path, out: Path, feature_dir: Path, metadata_url: str
) -> list[ProcessSpec]:
    world_size = run.spec.trainer.replicas
    master_port = str(free_port())
    return [
        ProcessSpec(
            name=f"trainer-{rank}",
            argv=_cli("train", "--config", manifest, "--out", out, "--feature-store", feature_dir),
            env={
                METADATA_URL_ENV: metadata_url,
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "WORLD_SIZE": str(world_size),
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": master_port,
            },
            foreground=rank == 0,
        )
        for rank in range(world_size)
    ]


@contextmanager
def metadata_store_url(out: Path, metadata_url: str | None) -> Iterator[str]:
    """The given URL, or a local redis-server's for the run's lifetime (its AOF under ``out/redis``)."""
    if metadata_url:
        yield metadata_url
        return
    server = LocalRedisServer(out / "redis").start()
    try:
        yield server.url
    finally:
        server.stop()


def launch_local_run(
    run: SpecForgeRun,
    manifest: Path,
    out: Path,
    *,
    metadata_url: str | None = None,
    max_unacked_refs: int | None = None,
) -> None:
    """Run every process of ``run`` here and wait; raises :class:`ProcessFailed` naming the failed one."""
    if not run_mode(run).durable:
        raise ValueError(f"{run.spec.deployment_mode.value} runs in one process; nothing to launch")
    out.mkdir(parents=True, exist_ok=True)
    feature_dir = out / "features"
    manifest = manifest.resolve()
    with metadata_store_url(out, metadata_url) as url:
        supervisor = Supervisor(out / "logs")
        try:
            for spec in producer_specs(run, manifest, feature_dir, url, max_unacked_refs):
                supervisor.start(spec)
            for spec in trainer_specs(run, manifest, out, feature_dir, url):
                supervisor.start(spec)
            supervisor.wait()
        finally:
            supervisor.stop_all()
