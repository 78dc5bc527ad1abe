"""The pod template shared by trainer and producer pods: command, env, volumes, resources, placement.

What runs in the container (argv and env) comes from :mod:`specforge_api.pod_contract`, the description
``specforge run`` starts local processes from; this module adds what only a pod has: the run manifest
as a mounted file, volumes, a memory-backed ``/dev/shm``, the store password from a Secret, resources and
placement, then the pool's overrides (:mod:`.overrides`). Model and dataset volumes are mounted at the
parent directory of their ``path``.
"""

from __future__ import annotations

import posixpath
from typing import Any

from specforge_api.common import Resources, VolumeSource
from specforge_api.pod_contract import (
    CONFIG_DIR,
    CONFIG_FILE,
    SHARED_MEMORY_DIR,
    TRAINER_UID,
    Env,
    ProcessContract,
    Volumes,
    producer_process,
    trainer_process,
    trainer_world_size,
)
from specforge_api.run import SpecForgeRun
from specforge_api.spec import WorkerPool

from specforge_operator.render.meta import ChildNames
from specforge_operator.render.overrides import (
    container_env,
    container_security_context,
    extra_mounts,
    extra_volumes,
    pod_metadata,
    pod_placement_and_identity,
    pod_security_context,
)
from specforge_operator.render.storage import run_directories
from specforge_operator.render.store import MetadataStoreConnection


def trainer_process_of(run: SpecForgeRun, store: MetadataStoreConnection | None) -> ProcessContract:
    spec = run.spec
    return trainer_process(
        mode=spec.deployment_mode,
        replicas=spec.trainer.replicas,
        gpus_per_replica=spec.trainer.gpus_per_replica,
        config=CONFIG_FILE,
        out=spec.checkpoints.path,
        feature_store=spec.feature_store.path,
        metadata_url=store.url if store else None,
    )


def producer_process_of(run: SpecForgeRun, store: MetadataStoreConnection | None) -> ProcessContract:
    spec = run.spec
    assert spec.producers is not None
    return producer_process(
        replicas=spec.producers.replicas,
        trainer_world_size=trainer_world_size(spec.trainer.replicas, spec.trainer.gpus_per_replica),
        config=CONFIG_FILE,
        feature_store=spec.feature_store.path,
        metadata_url=store.url if store else None,
    )


def _volume(name: str, source: VolumeSource) -> dict[str, Any]:
    return {"name": name, **source.to_wire()}


def _volumes_and_mounts(
    run: SpecForgeRun, pool: WorkerPool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec = run.spec
    volumes: list[dict[str, Any]] = [
        {"name": Volumes.CONFIG, "configMap": {"name": ChildNames(run.name).config}},
        {
            "name": Volumes.SHARED_MEMORY,
            "emptyDir": {"medium": "Memory", "sizeLimit": pool.shared_memory_size},
        },
    ]
    mounts: list[dict[str, Any]] = [
        {"name": Volumes.CONFIG, "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": Volumes.SHARED_MEMORY, "mountPath": SHARED_MEMORY_DIR},
    ]
    for directory in run_directories(run):
        volumes.append(_volume(directory.volume_name, directory.source))
        mounts.append({"name": directory.volume_name, "mountPath": directory.mount_path, "readOnly": False})
    for name, data in ((Volumes.TARGET_MODEL, spec.target_model), (Volumes.DATASET, spec.dataset)):
        if data.path is not None and data.volume is not None:
            volumes.append(_volume(name, data.volume))
            mounts.append({"name": name, "mountPath": posixpath.dirname(data.path), "readOnly": True})
    return volumes + extra_volumes(pool), mounts + extra_mounts(pool)


def _env(
    run: SpecForgeRun, process: ProcessContract, store: MetadataStoreConnection | None
) -> list[dict[str, Any]]:
    identity = {Env.RUN_NAME: run.name, Env.RUN_NAMESPACE: run.namespace}
    if run.metadata.uid:
        identity[Env.RUN_UID] = run.metadata.uid
    env: list[dict[str, Any]] = [
        {"name": name, "value": value} for name, value in {**identity, **process.env}.items()
    ]
    if store is not None and store.password_secret is not None:
        secret = store.password_secret
        env.append(
            {
                "name": Env.METADATA_PASSWORD,
                "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}},
            }
        )
    return env


def container_resources(resources: Resources, gpus: int, accelerator: str) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": resources.cpu, "memory": resources.memory}
    limits: dict[str, Any] = {"memory": resources.memory}
    if gpus:
        requests[accelerator] = limits[accelerator] = str(gpus)
    return {"requests": requests, "limits": limits}


def pod_template(
    run: SpecForgeRun,
    *,
    pool: WorkerPool,
    container_name: str,
    process: ProcessContract,
    labels: dict[str, str],
    restart_policy: str,
    store: MetadataStoreConnection | None,
    service_account: str | None = None,
) -> dict[str, Any]:
    spec = run.spec
    volumes, mounts = _volumes_and_mounts(run, pool)
    service_account = pool.service_account_name or service_account
    container = {
        "name": container_name,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": list(process.argv),
        **container_env(_env(run, process, store), pool),
        "resources": container_resources(pool.resources, pool.gpus_per_replica, pool.accelerator_resource),
        "volumeMounts": mounts,
        # A failed process's last log lines (its "error: ..." line) become the pod's termination message,
        # which the run's Failed condition quotes and the restart policy reads.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # The trainer image runs as a numeric non-root user (Dockerfile): runAsNonRoot holds without runAsUser.
        "securityContext": container_security_context(pool),
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [container],
        "volumes": volumes,
        "automountServiceAccountToken": service_account is not None,
        "securityContext": pod_security_context(pool, fs_group=TRAINER_UID),
        **pod_placement_and_identity(pool),
    }
    optional = {
        "serviceAccountName": service_account,
        "imagePullSecrets": [secret.to_wire() for secret in spec.image_pull_secrets] or None,
        "priorityClassName": spec.scheduling.priority_class_name,
        "schedulerName": spec.scheduling.scheduler_name,
    }
    pod_spec.update({key: value for key, value in optional.items() if value is not None})
    return {"metadata": pod_metadata(pool, labels), "spec": pod_spec}
