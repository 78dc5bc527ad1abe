"""The metadata store of a durable run: where trainers connect, and the managed Redis when the run owns one.

A managed Redis is a one-replica Deployment (Recreate, so a PVC is never mounted twice) behind a ClusterIP
Service, placed where the trainer pool may run (its nodeSelector and tolerations). It always keeps an append-only file fsynced before each reply (``appendfsync always``), which is
what lets the trainer's Redis store promise that an ack it returned survives a Redis crash; persistence
decides only where that file lives: on a PVC (survives the pod) or in an emptyDir (survives container
restarts). Its password Secret is rendered from a password the caller supplies: the reconciler creates
it once and never re-applies it, so the password is stable.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from specforge_api.common import SecretKeyRef
from specforge_api.pod_contract import REDIS_UID, redis_server_args
from specforge_api.run import SpecForgeRun
from specforge_api.spec import ManagedRedis

from specforge_operator.render.meta import ChildNames, object_meta, selector_labels

REDIS_PORT = 6379
DATA_DIR = "/data"
REDIS_COMPONENT = "metadata-store"
PASSWORD_KEY = "password"


@dataclass(frozen=True)
class MetadataStoreConnection:
    """How trainers and producers reach the store (the URL never carries the password)."""

    url: str
    password_secret: SecretKeyRef | None
    managed: ManagedRedis | None


def store_connection(run: SpecForgeRun) -> MetadataStoreConnection | None:
    store = run.spec.effective_metadata_store()
    if store is None:
        return None
    if store.external is not None:
        return MetadataStoreConnection(store.external.url, store.external.password_secret_ref, None)
    assert store.managed is not None  # guaranteed by MetadataStoreSpec's exactly-one rule
    names = ChildNames(run.name)
    url = f"redis://{names.redis}.{run.namespace}.svc:{REDIS_PORT}/0"
    secret = SecretKeyRef(name=names.redis_auth, key=PASSWORD_KEY) if store.managed.auth.enabled else None
    return MetadataStoreConnection(url, secret, store.managed)


def redis_auth_secret(run: SpecForgeRun, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(run, ChildNames(run.name).redis_auth, REDIS_COMPONENT),
        "type": "Opaque",
        "data": {PASSWORD_KEY: base64.b64encode(password.encode()).decode()},
    }


def managed_redis_manifests(run: SpecForgeRun, redis: ManagedRedis) -> list[dict[str, Any]]:
    """Deployment, Service and (with persistence) PVC; the Secret is handled by :func:`redis_auth_secret`."""
    names = ChildNames(run.name)
    manifests = []
    if redis.persistence.enabled:
        pvc_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": redis.persistence.size}},
        }
        if redis.persistence.storage_class_name is not None:
            pvc_spec["storageClassName"] = redis.persistence.storage_class_name
        manifests.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": object_meta(run, names.redis_data, REDIS_COMPONENT),
                "spec": pvc_spec,
            }
        )
    manifests.append(_redis_deployment(run, redis))
    manifests.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": object_meta(run, names.redis, REDIS_COMPONENT),
            "spec": {
                "type": "ClusterIP",
                "selector": selector_labels(run, REDIS_COMPONENT),
                "ports": [{"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}],
            },
        }
    )
    return manifests


def _redis_deployment(run: SpecForgeRun, redis: ManagedRedis) -> dict[str, Any]:
    names = ChildNames(run.name)
    meta = object_meta(run, names.redis, REDIS_COMPONENT)
    # Without an fsynced AOF the trainer's store refuses the server (strict ack durability). With
    # everysec it would have to wait on WAITAOF for the once-a-second fsync, up to a second per step.
    args = redis_server_args(port=REDIS_PORT, data_dir=DATA_DIR)
    env = []
    if redis.auth.enabled:
        env.append(
            {
                "name": "REDIS_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": names.redis_auth, "key": PASSWORD_KEY}},
            }
        )
        args += ["--requirepass", "$(REDIS_PASSWORD)"]
    data_volume: dict[str, Any] = (
        {"name": "data", "persistentVolumeClaim": {"claimName": names.redis_data}}
        if redis.persistence.enabled
        else {"name": "data", "emptyDir": {}}
    )
    container = {
        "name": "redis",
        "image": redis.image,
        "command": ["redis-server"],
        "args": args,
        "env": env,
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 2},
        "resources": {
            "requests": {"cpu": redis.resources.cpu, "memory": redis.resources.memory},
            "limits": {"memory": redis.resources.memory},
        },
        "volumeMounts": [{"name": "data", "mountPath": DATA_DIR}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": True,
            "runAsUser": REDIS_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(run, REDIS_COMPONENT)},
            "template": {
                "metadata": {"labels": meta["labels"]},
                "spec": {
                    "containers": [container],
                    "volumes": [data_volume],
                    "automountServiceAccountToken": False,
                    **_trainer_placement(run),
                    # A fresh claim (or emptyDir) is root-owned; the group makes it writable for Redis.
                    "securityContext": {"fsGroup": REDIS_UID, "fsGroupChangePolicy": "OnRootMismatch"},
                },
            },
        },
    }


def _trainer_placement(run: SpecForgeRun) -> dict[str, Any]:
    """The store runs where the trainer pool may run: on clusters whose nodes are all tainted or
    selected by label, a Redis without the trainers' tolerations and selector would never schedule."""
    trainer = run.spec.trainer
    placement: dict[str, Any] = {}
    if trainer.node_selector:
        placement["nodeSelector"] = dict(trainer.node_selector)
    if trainer.tolerations:
        placement["tolerations"] = [toleration.to_wire() for toleration in trainer.tolerations]
    return placement


def store_is_ready(deployment: dict[str, Any] | None) -> bool:
    """A managed Redis is ready when its Deployment reports a ready replica."""
    return bool(deployment and (deployment.get("status") or {}).get("readyReplicas", 0) >= 1)
