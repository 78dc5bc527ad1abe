"""The pod contract: the argv and env each process of a run gets, for pods and local runs alike.

The operator renders pods from these descriptions and ``specforge run`` starts local processes from
the same ones, so a laptop run and a cluster run start the same processes. A description may name
per-replica values as Kubernetes ``$(VAR)`` references (the rank a training workload injects, the
completion index of an indexed Job); the kubelet expands them in a pod, :func:`expand_references`
does the same for a local process, given the env the workload would inject (:func:`workload_env`).

Standard library only, so every side imports it cheaply.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from specforge_api.modes import DeploymentMode

CONFIG_DIR = "/etc/specforge"
CONFIG_FILE = f"{CONFIG_DIR}/run.yaml"
TRAINER_UID = 10001  # the trainer image's user (Dockerfile); volumes are made writable for its group
REDIS_UID = 999  # the uid redis images run as


class Env:
    """Environment variables of the contract. The first group is set by whoever starts the process."""

    # Only pods get these: they identify the run whose status rank 0 patches (no local process reports).
    RUN_NAME = "SPECFORGE_RUN_NAME"
    RUN_NAMESPACE = "SPECFORGE_RUN_NAMESPACE"
    RUN_UID = "SPECFORGE_RUN_UID"  # scopes the run's state in a shared store (control_plane.scope)
    DEPLOYMENT_MODE = "SPECFORGE_DEPLOYMENT_MODE"
    METADATA_URL = "SPECFORGE_METADATA_URL"
    METADATA_PASSWORD = "SPECFORGE_METADATA_PASSWORD"
    MAX_UNACKED_REFS = "SPECFORGE_MAX_UNACKED_REFS"
    STORE_WAIT_S = "SPECFORGE_STORE_WAIT_S"
    # Injected by the platform: a training workload (PyTorchJob's Master/Worker pods), torchrun, an
    # indexed batch Job. The local launcher injects the same names (workload_env).
    RANK = "RANK"
    LOCAL_RANK = "LOCAL_RANK"
    WORLD_SIZE = "WORLD_SIZE"
    MASTER_ADDR = "MASTER_ADDR"
    MASTER_PORT = "MASTER_PORT"
    JOB_COMPLETION_INDEX = "JOB_COMPLETION_INDEX"


# The word a trainer that found its metadata store emptied puts in its error (and so in its pod's
# termination message): the operator then fails the run instead of restarting it.
STORE_LOST_REASON = "MetadataStoreLost"
DEFAULT_MAX_UNACKED_REFS = 64  # a producer's backpressure bound when the pod sets none


class Tunables:
    """Environment variables a user may set on a process (pod overrides, a laptop shell); not reserved."""

    REDIS_DURABILITY = "SPECFORGE_REDIS_DURABILITY"  # strict (default) | relaxed
    MODEL_CACHE = "SPECFORGE_MODEL_CACHE"  # where packaged target models are kept


@dataclass(frozen=True)
class PodEnv:
    """A process's environment under the contract, read in one place and typed: every trainer entry
    point takes what it needs from here instead of spelling variable names."""

    run_name: str | None = None
    run_namespace: str | None = None
    run_uid: str | None = None
    deployment_mode: DeploymentMode | None = None
    metadata_url: str | None = None
    metadata_password: str | None = None
    max_unacked_refs: int | None = None
    store_wait_s: float | None = None
    rank: int = 0
    local_rank: int | None = None
    world_size: int = 1
    redis_durability: str | None = None
    model_cache: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> PodEnv:
        """The contract's variables from ``environ`` (``os.environ`` by default); an empty value is unset."""
        env = {key: value for key, value in (os.environ if environ is None else environ).items() if value}
        mode = env.get(Env.DEPLOYMENT_MODE)
        return cls(
            run_name=env.get(Env.RUN_NAME),
            run_namespace=env.get(Env.RUN_NAMESPACE),
            run_uid=env.get(Env.RUN_UID),
            deployment_mode=DeploymentMode.parse(mode) if mode else None,
            metadata_url=env.get(Env.METADATA_URL),
            metadata_password=env.get(Env.METADATA_PASSWORD),
            max_unacked_refs=_number(env, Env.MAX_UNACKED_REFS, int),
            store_wait_s=_number(env, Env.STORE_WAIT_S, float),
            rank=_number(env, Env.RANK, int) or 0,
            local_rank=_number(env, Env.LOCAL_RANK, int),
            world_size=_number(env, Env.WORLD_SIZE, int) or 1,
            redis_durability=env.get(Tunables.REDIS_DURABILITY),
            model_cache=env.get(Tunables.MODEL_CACHE),
        )


def _number(env: Mapping[str, str], name: str, kind: type[int] | type[float]) -> Any:
    if name not in env:
        return None
    try:
        return kind(env[name])
    except ValueError:
        raise ValueError(f"${name} must be a number, got {env[name]!r}") from None


# What a user's pod overrides may not name (the CRD refuses them): the env above, the volumes the operator
# mounts and where, and the labels its selectors match.
RESERVED_ENV_NAMES = frozenset(
    value for name, value in vars(Env).items() if name.isupper() and isinstance(value, str)
)


class Volumes:
    """Names of the volumes the operator puts in pods (trainer and producers; the managed store)."""

    CONFIG = "config"
    FEATURES = "features"
    CHECKPOINTS = "checkpoints"
    TARGET_MODEL = "target-model"
    DATASET = "dataset"
    SHARED_MEMORY = "dshm"
    STORE_DATA = "data"
    STORE_AUTH = "redis-auth"


SHARED_MEMORY_DIR = "/dev/shm"
STORE_DATA_DIR = "/data"
STORE_AUTH_DIR = "/etc/redis-auth"
RESERVED_VOLUME_NAMES = frozenset(
    value for name, value in vars(Volumes).items() if name.isupper() and isinstance(value, str)
)
RESERVED_MOUNT_PATHS = frozenset({CONFIG_DIR, SHARED_MEMORY_DIR, STORE_DATA_DIR, STORE_AUTH_DIR})
RUN_LABEL = "specforge.io/run"
COMPONENT_LABEL = "app.kubernetes.io/component"
OPERATOR_LABEL_KEYS = frozenset(
    {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
        COMPONENT_LABEL,
        "app.kubernetes.io/part-of",
        "app.kubernetes.io/managed-by",
        RUN_LABEL,
    }
)


@dataclass(frozen=True)
class ProcessContract:
    """One process: its argv (``$(VAR)`` references allowed) and the env it is given literally."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)


def ref(name: str) -> str:
    return f"$({name})"


def processes_per_pod(gpus_per_replica: int) -> int:
    """One rank per GPU; a CPU-only pod runs one rank."""
    return max(gpus_per_replica, 1)


def trainer_world_size(replicas: int, gpus_per_replica: int) -> int:
    return replicas * processes_per_pod(gpus_per_replica)


def _base_env(mode: DeploymentMode, metadata_url: str | None) -> dict[str, str]:
    env = {Env.DEPLOYMENT_MODE: mode.value}
    if metadata_url is not None:
        env[Env.METADATA_URL] = metadata_url
    return env


def trainer_process(
    *,
    mode: DeploymentMode,
    replicas: int,
    gpus_per_replica: int,
    config: str,
    out: str,
    feature_store: str,
    metadata_url: str | None,
) -> ProcessContract:
    """A trainer pod: ``specforge train`` itself, or torchrun starting one rank per GPU of the pod.

    Under torchrun the pod's rank (``RANK``, the node rank a training workload injects) and the master's
    address become torchrun's node rank and rendezvous; torchrun then gives each of its ranks ``RANK``,
    ``LOCAL_RANK`` and ``WORLD_SIZE``.
    """
    train = ("train", "--config", config, "--out", out, "--feature-store", feature_store)
    env = _base_env(mode, metadata_url)
    nproc = processes_per_pod(gpus_per_replica)
    if nproc == 1:
        env[Env.LOCAL_RANK] = "0"
        return ProcessContract(("specforge", *train), env)
    torchrun = (
        "python", "-m", "torch.distributed.run",
        "--nnodes", str(replicas),
        "--nproc-per-node", str(nproc),
        "--node-rank", ref(Env.RANK),
        "--master-addr", ref(Env.MASTER_ADDR),
        "--master-port", ref(Env.MASTER_PORT),
        "-m", "specforge_trainer.cli",
    )  # fmt: skip
    return ProcessContract((*torchrun, *train), env)


def producer_process(
    *,
    replicas: int,
    trainer_world_size: int,
    config: str,
    feature_store: str,
    metadata_url: str | None,
) -> ProcessContract:
    """A feature producer: its shard is its index in the indexed Job, one shard per replica."""
    argv = (
        "specforge", "produce", "--config", config, "--feature-store", feature_store,
        "--shard-index", ref(Env.JOB_COMPLETION_INDEX),
        "--num-shards", str(replicas),
        "--trainer-world-size", str(trainer_world_size),
    )  # fmt: skip
    return ProcessContract(argv, _base_env(DeploymentMode.DISAGGREGATED, metadata_url))


# The metadata store's durability: an append-only file fsynced before every reply, which is what lets
# the trainer's strict Redis store promise that an ack it returned survives a crash of Redis.
METADATA_STORE_DURABILITY = ("--appendonly", "yes", "--appendfsync", "always")


def redis_server_args(*, port: int, data_dir: str) -> list[str]:
    """The metadata store's redis-server options (a local run adds only logging and a loopback bind)."""
    return ["--port", str(port), "--dir", data_dir, *METADATA_STORE_DURABILITY]


def workload_env(
    *, pod_index: int, replicas: int, gpus_per_replica: int, master_addr: str, master_port: int
) -> dict[str, str]:
    """What a training workload injects into trainer pod ``pod_index`` (as PyTorchJob v1 does)."""
    return {
        Env.RANK: str(pod_index),
        Env.WORLD_SIZE: str(trainer_world_size(replicas, gpus_per_replica)),
        Env.MASTER_ADDR: master_addr,
        Env.MASTER_PORT: str(master_port),
    }


_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_references(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``$(VAR)`` → its value, as the kubelet expands a container's args; unknown names stay as written."""
    return [_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), arg) for arg in argv]
