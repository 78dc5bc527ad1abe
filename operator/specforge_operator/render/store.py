"""The metadata store of a durable run: where trainers connect, and the managed Redis when the run owns one.

A managed Redis is a one-replica Deployment (Recreate, so a PVC is never mounted twice) behind a ClusterIP
Service and a NetworkPolicy that admits only the run's own pods, placed by its own overrides or, when it
has no nodeSelector and tolerations of its own, where the trainer pool may run. It always keeps an append-only file fsynced before each reply (``appendfsync always``), which is
what lets the trainer's Redis store promise that an ack it returned survives a Redis crash; persistence
decides only where that file lives: on a PVC (survives the pod) or in an emptyDir (survives container
restarts). Once the run has finished, the Deployment is scaled to zero: no Redis runs for nobody, and
the data stays on its claim for as long as the run exists.

Its password Secret is rendered from a password the caller supplies: the reconciler creates it once and
never re-applies it, so the password is stable. redis-server reads it from a config file mounted from
that Secret (``requirepass`` inside it), never from argv, which ``ps`` on the node shows to anyone.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from specforge_api.common import SecretKeyRef
from specforge_api.pod_contract import (
    REDIS_UID,
    RUN_LABEL,
    STORE_AUTH_DIR,
    STORE_DATA_DIR,
    Volumes,
    redis_server_args,
)
from specforge_api.run import SpecForgeRun
from specforge_api.spec import ManagedRedis

from specforge_operator.render.meta import ChildNames, object_meta, selector_labels
from specforge_operator.render.overrides import (
    container_env,
    container_security_context,
    extra_mounts,
    extra_volumes,
    pod_metadata,
    pod_placement_and_identity,
    pod_security_context,
)

REDIS_PORT = 6379
REDIS_COMPONENT = "metadata-store"
PASSWORD_KEY = "password"
# The Secret's second key: a redis.conf fragment redis-server reads as its config file.
REDIS_CONFIG_KEY = "redis.conf"


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


def redis_auth_data(password: str) -> dict[str, str]:
    """The password Secret's data: the password (clients) and the config file that sets it (the server)."""
    config = f'requirepass "{password}"\n'
    return {
        PASSWORD_KEY: base64.b64encode(password.encode()).decode(),
        REDIS_CONFIG_KEY: base64.b64encode(config.encode()).decode(),
    }


def redis_auth_secret(run: SpecForgeRun, password: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(run, ChildNames(run.name).redis_auth, REDIS_COMPONENT),
        "type": "Opaque",
        "data": redis_auth_data(password),
    }


def managed_redis_manifests(
    run: SpecForgeRun, redis: ManagedRedis, *, released: bool
) -> list[dict[str, Any]]:
    """PVC (with persistence), Deployment (no replica once ``released``: the run is done with it), Service and
    NetworkPolicy; the Secret is handled by :func:`redis_auth_secret`."""
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
    manifests.append(_redis_deployment(run, redis, replicas=0 if released else 1))
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
    manifests.append(_redis_network_policy(run))
    return manifests


def _redis_network_policy(run: SpecForgeRun) -> dict[str, Any]:
    """Only pods of this run (trainer ranks, producers) may connect; enforced where the CNI implements
    NetworkPolicy, and harmless where it does not."""
    names = ChildNames(run.name)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(run, names.redis, REDIS_COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(run, REDIS_COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {RUN_LABEL: run.name}}}],
                    "ports": [{"port": REDIS_PORT, "protocol": "TCP"}],
                }
            ],
        },
    }


def _redis_deployment(run: SpecForgeRun, redis: ManagedRedis, *, replicas: int) -> dict[str, Any]:
    names = ChildNames(run.name)
    meta = object_meta(run, names.redis, REDIS_COMPONENT)
    # Without an fsynced AOF the trainer's store refuses the server (strict ack durability). With
    # everysec it would have to wait on WAITAOF for the once-a-second fsync, up to a second per step.
    args = redis_server_args(port=REDIS_PORT, data_dir=STORE_DATA_DIR)
    volumes: list[dict[str, Any]] = [
        {"name": Volumes.STORE_DATA, "persistentVolumeClaim": {"claimName": names.redis_data}}
        if redis.persistence.enabled
        else {"name": Volumes.STORE_DATA, "emptyDir": {}}
    ]
    mounts: list[dict[str, Any]] = [{"name": Volumes.STORE_DATA, "mountPath": STORE_DATA_DIR}]
    if redis.auth.enabled:
        # A config file as redis-server's first argument; the options after it override its settings.
        args = [f"{STORE_AUTH_DIR}/{REDIS_CONFIG_KEY}", *args]
        volumes.append(
            {
                "name": Volumes.STORE_AUTH,
                "secret": {
                    "secretName": names.redis_auth,
                    "items": [{"key": REDIS_CONFIG_KEY, "path": REDIS_CONFIG_KEY}],
                },
            }
        )
        mounts.append({"name": Volumes.STORE_AUTH, "mountPath": STORE_AUTH_DIR, "readOnly": True})
    container = {
        "name": "redis",
        "image": redis.image,
        "command": ["redis-server"],
        "args": args,
        **container_env([], redis),
        "ports": [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "redis"}, "periodSeconds": 2},
        "resources": {
            "requests": {"cpu": redis.resources.cpu, "memory": redis.resources.memory},
            "limits": {"memory": redis.resources.memory},
        },
        "volumeMounts": mounts + extra_mounts(redis),
        "securityContext": container_security_context(redis, run_as_user=REDIS_UID),
    }
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes + extra_volumes(redis),
        "automountServiceAccountToken": redis.service_account_name is not None,
        **_trainer_placement(run),
        **pod_placement_and_identity(redis),
        # A fresh claim (or emptyDir) is root-owned; the group makes it writable for Redis.
        "securityContext": pod_security_context(redis, fs_group=REDIS_UID),
    }
    optional = {
        "serviceAccountName": redis.service_account_name,
        "imagePullSecrets": [secret.to_wire() for secret in run.spec.image_pull_secrets] or None,
    }
    pod_spec.update({key: value for key, value in optional.items() if value is not None})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector_labels(run, REDIS_COMPONENT)},
            "template": {"metadata": pod_metadata(redis, meta["labels"]), "spec": pod_spec},
        },
    }


def _trainer_placement(run: SpecForgeRun) -> dict[str, Any]:
    """Without placement of its own the store runs where the trainer pool may run: on clusters whose nodes
    are all tainted or selected by label, a Redis without the trainers' tolerations and selector would
    never schedule. The store's own nodeSelector and tolerations replace these (see the caller)."""
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
