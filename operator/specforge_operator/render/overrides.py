"""A user's :class:`~specforge_api.pod_overrides.PodOverrides` merged into a pod the operator renders.

Shared by the trainer and producer pods and the managed store's pod. The operator's own entries come
first and win: its labels over the user's (selectors depend on them), its env over envFrom keys (the
kubelet gives explicit env precedence), its hardening over the security context (only identity and
filesystem fields are taken from the user). The CRD already refused names that would collide.
"""

from __future__ import annotations

from typing import Any

from specforge_api.pod_overrides import PodOverrides

# Hardening every container the operator renders keeps, whatever the overrides say.
HARDENED_CONTAINER_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _present(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value not in (None, [], {})}


def container_env(operator_env: list[dict[str, Any]], overrides: PodOverrides) -> dict[str, Any]:
    """``env`` and ``envFrom`` of the container: the operator's variables, then the user's."""
    return _present(
        {
            "env": operator_env + [variable.to_wire() for variable in overrides.env],
            "envFrom": [source.to_wire() for source in overrides.env_from],
        }
    )


def extra_volumes(overrides: PodOverrides) -> list[dict[str, Any]]:
    return [volume.to_wire() for volume in overrides.volumes]


def extra_mounts(overrides: PodOverrides) -> list[dict[str, Any]]:
    return [mount.to_wire() for mount in overrides.volume_mounts]


def container_security_context(overrides: PodOverrides, *, run_as_user: int | None = None) -> dict[str, Any]:
    context = overrides.security_context
    return {
        **HARDENED_CONTAINER_CONTEXT,
        **_present(
            {
                "runAsUser": context.run_as_user or run_as_user,
                "runAsGroup": context.run_as_group,
                "readOnlyRootFilesystem": context.read_only_root_filesystem,
            }
        ),
    }


def pod_security_context(overrides: PodOverrides, *, fs_group: int) -> dict[str, Any]:
    """Volumes the pod writes (emptyDirs, claims) are made group-writable for ``fs_group``."""
    context = overrides.security_context
    return {
        "fsGroup": context.fs_group if context.fs_group is not None else fs_group,
        "fsGroupChangePolicy": "OnRootMismatch",
        **_present({"supplementalGroups": list(context.supplemental_groups)}),
    }


def pod_placement_and_identity(overrides: PodOverrides) -> dict[str, Any]:
    """nodeSelector, tolerations, affinity, runtimeClassName: the pod-spec fields copied as given."""
    return _present(
        {
            "nodeSelector": dict(overrides.node_selector),
            "tolerations": [toleration.to_wire() for toleration in overrides.tolerations],
            "affinity": overrides.affinity,
            "runtimeClassName": overrides.runtime_class_name,
        }
    )


def pod_metadata(overrides: PodOverrides, labels: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {"labels": {**overrides.pod_labels, **labels}}
    if overrides.pod_annotations:
        metadata["annotations"] = dict(overrides.pod_annotations)
    return metadata
