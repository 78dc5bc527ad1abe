"""Kubernetes-shaped value types the run spec reuses: quantities, volumes, resources, tolerations, secrets.

They mirror the subset of core/v1 that a run needs, so the CRD schema stays small and every field keeps a
description; the render layer turns them back into the core/v1 objects.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from specforge_api.base import ApiModel, CrossFieldRule, cel_exactly_one_set, exactly_one_set

QUANTITY_PATTERN = r"^([+]?[0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ABSOLUTE_PATH_PATTERN = r"^/.*$"
# An extended resource name: a domain-qualified name such as nvidia.com/gpu or amd.com/gpu.
EXTENDED_RESOURCE_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+[a-z]+/[-._a-zA-Z0-9]+$"
DEFAULT_ACCELERATOR_RESOURCE = "nvidia.com/gpu"


def _number_to_string(value: object) -> object:
    # YAML reads `cpu: 2` as an int; Kubernetes accepts it, so do we.
    if isinstance(value, bool):
        return value
    return str(value) if isinstance(value, int | float) else value


Quantity = Annotated[
    str,
    BeforeValidator(_number_to_string),
    Field(pattern=QUANTITY_PATTERN, max_length=64),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": 64,
        }
    ),
]
"""A Kubernetes resource quantity such as ``500m``, ``2`` or ``8Gi``."""

# A ceiling for every duration in seconds the API takes: ten years.
MAX_SECONDS = 315_360_000
# Label values are at most 63 characters (Kubernetes' rule); annotation values are bounded so 64 of them
# stay within the 256 KiB Kubernetes allows for all of a pod's annotations.
LabelValue = Annotated[str, Field(max_length=63)]
AnnotationValue = Annotated[str, Field(max_length=4096)]

DnsLabel = Annotated[str, Field(pattern=DNS_LABEL_PATTERN, min_length=1, max_length=63)]
AbsolutePath = Annotated[str, Field(pattern=ABSOLUTE_PATH_PATTERN, min_length=1, max_length=4096)]


class PersistentVolumeClaimVolume(ApiModel):
    """An existing PersistentVolumeClaim in the run's namespace."""

    claim_name: DnsLabel = Field(description="Name of the PersistentVolumeClaim.")
    read_only: bool = Field(default=False, description="Mount the claim read-only.")


class HostPathVolume(ApiModel):
    """A directory on the node (single-node clusters and tests)."""

    path: AbsolutePath = Field(description="Absolute directory path on the node.")


class EmptyDirVolume(ApiModel):
    """Scratch space that lives as long as the pod."""

    size_limit: Quantity | None = Field(default=None, description="Upper bound on the space used, e.g. 10Gi.")


class VolumeSource(ApiModel):
    """Where data lives: exactly one of a PVC, a host path or an emptyDir."""

    persistent_volume_claim: PersistentVolumeClaimVolume | None = Field(
        default=None, description="Use an existing PersistentVolumeClaim."
    )
    host_path: HostPathVolume | None = Field(default=None, description="Use a directory on the node.")
    empty_dir: EmptyDirVolume | None = Field(default=None, description="Use pod-lifetime scratch space.")

    cross_field_rules = (
        CrossFieldRule(
            cel=cel_exactly_one_set("persistentVolumeClaim", "hostPath", "emptyDir"),
            message="exactly one of persistentVolumeClaim, hostPath or emptyDir must be set",
            holds=lambda v: exactly_one_set(v.persistent_volume_claim, v.host_path, v.empty_dir),
        ),
    )


class Resources(ApiModel):
    """CPU and memory for one container; the request equals the limit for memory, CPU is requested only."""

    cpu: Quantity = Field(default="1", description="CPU request, e.g. 500m or 2.")
    memory: Quantity = Field(default="4Gi", description="Memory request and limit, e.g. 8Gi.")


class Toleration(ApiModel):
    """A core/v1 toleration, so GPU nodes with taints can be used."""

    key: str | None = Field(
        default=None, max_length=253, description="Taint key; empty with Exists matches all."
    )
    operator: Literal["Exists", "Equal"] = Field(default="Equal", description="How the value is compared.")
    value: str | None = Field(default=None, max_length=63, description="Taint value for the Equal operator.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_SECONDS,
        description="For NoExecute: how long the pod stays bound after the taint appears.",
    )


class SecretKeyRef(ApiModel):
    """One key of a Secret in the run's namespace."""

    name: DnsLabel = Field(description="Name of the Secret.")
    key: str = Field(default="password", min_length=1, max_length=253, description="Key inside the Secret.")


class LocalObjectReference(ApiModel):
    """A reference to an object in the same namespace by name (e.g. an image pull Secret)."""

    name: DnsLabel = Field(description="Name of the referenced object.")
