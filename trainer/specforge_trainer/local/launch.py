"""Run a durable-mode SpecForgeRun on one machine as the processes its pods would be.

``specforge run`` hands ``dataflow_colocated`` and ``disaggregated`` manifests here. It starts a local
``redis-server`` (AOF, ``appendfsync always``, data under the output directory, so running the same
manifest into the same directory resumes) unless a store URL is given, then one process per producer
pod (disaggregated) and per trainer pod, all under one :class:`Supervisor`. Each is started from the
pod contract (:mod:`specforge_api.pod_contract`) the operator renders pods from, with the env the pod's
workload would inject (rank, master address, completion index); several GPUs per replica means torchrun
here as in the pod.
Ctrl-C or the first failing process stops them all, and the error names that process.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from specforge_api import SpecForgeRun
from specforge_api.pod_contract import (
    METADATA_STORE_DURABILITY,
    Env,
    ProcessContract,
    expand_references,
    producer_process,
    trainer_process,
    trainer_world_size,
    workload_env,
)

from specforge_trainer.local.redis_server import LocalRedisServer, free_port
from specforge_trainer.local.supervisor import ProcessSpec, Supervisor

LOCALHOST = "127.0.0.1"


def local_argv(process: ProcessContract, env: Mapping[str, str]) -> list[str]:
    """The contract's argv as this machine runs it: ``$(VAR)`` expanded as the kubelet would, and the
    image's ``specforge``/``python`` resolved to this interpreter (the virtualenv need not be on PATH)."""
    argv = expand_references(process.argv, env)
    program = {"specforge": [sys.executable, "-m", "specforge_trainer.cli"], "python": [sys.executable]}
    return [*program.get(argv[0], argv[:1]), *argv[1:]]


def _spec(name: str, process: ProcessContract, injected: Mapping[str, str], **options: bool) -> ProcessSpec:
    env = {**process.env, **injected}
    return ProcessSpec(name=name, argv=local_argv(process, env), env=env, **options)


def producer_specs(
    run: SpecForgeRun, manifest: Path, feature_dir: Path, metadata_url: str, max_unacked_refs: int | None
) -> list[ProcessSpec]:
    """One process per producer pod, with the completion index its indexed Job would give it."""
    spec = run.spec
    if spec.producers is None:
        return []
    process = producer_process(
        replicas=spec.producers.replicas,
        trainer_world_size=trainer_world_size(spec.trainer.replicas, spec.trainer.gpus_per_replica),
        config=str(manifest),
        feature_store=str(feature_dir),
        metadata_url=metadata_url,
    )
    bound = {Env.MAX_UNACKED_REFS: str(max_unacked_refs)} if max_unacked_refs else {}
    return [
        _spec(f"producer-{index}", process, {Env.JOB_COMPLETION_INDEX: str(index), **bound})
        for index in range(spec.producers.replicas)
    ]


def trainer_specs(
    run: SpecForgeRun, manifest: Path, out: Path, feature_dir: Path, metadata_url: str
) -> list[ProcessSpec]:
    """One process per trainer pod, with the env its training workload would inject (rank, master)."""
    trainer = run.spec.trainer
    process = trainer_process(
        mode=run.spec.deployment_mode,
        replicas=trainer.replicas,
        gpus_per_replica=trainer.gpus_per_replica,
        config=str(manifest),
        out=str(out),
        feature_store=str(feature_dir),
        metadata_url=metadata_url,
    )
    master_port = free_port()
    return [
        _spec(
            f"trainer-{index}",
            process,
            workload_env(
                pod_index=index,
                replicas=trainer.replicas,
                gpus_per_replica=trainer.gpus_per_replica,
                master_addr=LOCALHOST,
                master_port=master_port,
            ),
            foreground=index == 0,
        )
        for index in range(trainer.replicas)
    ]


@contextmanager
def metadata_store_url(out: Path, metadata_url: str | None) -> Iterator[str]:
    """The given URL, or a local redis-server's for the run's lifetime (its AOF under ``out/redis``)."""
    if metadata_url:
        yield metadata_url
        return
    server = LocalRedisServer(out / "redis", config_args=METADATA_STORE_DURABILITY).start()
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
    if not run.spec.deployment_mode.durable:
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
