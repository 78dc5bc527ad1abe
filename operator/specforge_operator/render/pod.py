"""The pod template shared by trainer and producer pods: command, env, volumes, resources, placement.

Everything a trainer needs to know arrives here: its run and mode as env, the whole run manifest as a
mounted file, the store URL (and password from a Secret) in durable modes. Model and dataset volumes are
mounted at the parent directory of their ``path``.
"""

from __future__ import annotations

import posixpath
from typing import Any

from specforge_operator.api.common import Resources, VolumeSource
from specforge_operator.api.run import SpecForgeRun
from specforge_operator.api.spec import WorkerPool
from specforge_operator.render.meta import ChildNames
from specforge_operator.render.store import MetadataStoreConnection

CONFIG_DIR = "/etc/specforge"
CONFIG_FILE = f"{CONFIG_DIR}/run.yaml"
GPU_RESOURCE = "nvidia.com/gpu"


def trainer_command(run: SpecForgeRun) -> list[str]:
    return ["specforge", "train", "--config", CONFIG_FILE, "--out", run.spec.checkpoints.path]


def producer_command() -> list[str]:
    return ["specforge", "produce", "--config", CONFIG_FILE]


def _volume(name: str, source: VolumeSource) -> dict[str, Any]:
    return {"name": name, **source.to_wire()}


def _volumes_and_mounts(run: SpecForgeRun) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec = run.spec
    volumes = [{"name": "config", "configMap": {"name": ChildNames(run.name).config}}]
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    for name, source, mount_path, read_only in (
        ("features", spec.feature_store.volume, spec.feature_store.path, False),
        ("checkpoints", spec.checkpoints.volume, spec.checkpoints.path, False),
    ):
        volumes.append(_volume(name, source))
        mounts.append({"name": name, "mountPath": mount_path, "readOnly": read_only})
    for name, data in (("target-model", spec.target_model), ("dataset", spec.dataset)):
        if data.path is not None and data.volume is not None:
            volumes.append(_volume(name, data.volume))
            mounts.append({"name": name, "mountPath": posixpath.dirname(data.path), "readOnly": True})
    return volumes, mounts


def _env(run: SpecForgeRun, store: MetadataStoreConnection | None) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "SPECFORGE_RUN_NAME", "value": run.name},
        {"name": "SPECFORGE_RUN_NAMESPACE", "value": run.namespace},
        {"name": "SPECFORGE_DEPLOYMENT_MODE", "value": run.spec.deployment_mode.value},
    ]
    if store is not None:
        env.append({"name": "SPECFORGE_METADATA_URL", "value": store.url})
        if store.password_secret is not None:
            env.append(
                {
                    "name": "SPECFORGE_METADATA_PASSWORD",
                    "valueFrom": {
                        "secretKeyRef": {"name": store.password_secret.name, "key": store.password_secret.key}
                    },
                }
            )
    return env


def container_resources(resources: Resources, gpus: int) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": resources.cpu, "memory": resources.memory}
    limits: dict[str, Any] = {"memory": resources.memory}
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    return {"requests": requests, "limits": limits}


# The trainer image runs as a numeric non-root user (Dockerfile), so runAsNonRoot holds without a runAsUser.
SECURE_CONTAINER_CONTEXT = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_template(
    run: SpecForgeRun,
    *,
    pool: WorkerPool,
    container_name: str,
    command: list[str],
    labels: dict[str, str],
    restart_policy: str,
    store: MetadataStoreConnection | None,
    service_account: str | None = None,
) -> dict[str, Any]:
    spec = run.spec
    volumes, mounts = _volumes_and_mounts(run)
    container = {
        "name": container_name,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": command,
        "env": _env(run, store),
        "resources": container_resources(pool.resources, pool.gpus_per_replica),
        "volumeMounts": mounts,
        "securityContext": SECURE_CONTAINER_CONTEXT,
    }
    pod_spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [container],
        "volumes": volumes,
        "automountServiceAccountToken": service_account is not None,
    }
    optional = {
        "serviceAccountName": service_account,
        "nodeSelector": pool.node_selector or None,
        "tolerations": [toleration.to_wire() for toleration in pool.tolerations] or None,
        "imagePullSecrets": [secret.to_wire() for secret in spec.image_pull_secrets] or None,
        "priorityClassName": spec.scheduling.priority_class_name,
        "schedulerName": spec.scheduling.scheduler_name,
    }
    pod_spec.update({key: value for key, value in optional.items() if value is not None})
    metadata: dict[str, Any] = {"labels": labels}
    if pool.pod_annotations:
        metadata["annotations"] = dict(pool.pod_annotations)
    return {"metadata": metadata, "spec": pod_spec}
