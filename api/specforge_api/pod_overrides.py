"""What a user may add to the pods the operator renders: env, extra volumes, placement, identity.

The subset of core/v1 a platform needs on day one (an HF token from a Secret, a model PVC, NCCL settings,
affinity, a workload-identity ServiceAccount, a runtime class), each field described and bounded like the
rest of the API. What would break the pod contract is refused by CEL in the API server, naming the field:
env names the operator sets (:data:`RESERVED_ENV_NAMES`), volume names and mount paths it uses, the labels
its selectors match. Only identity and filesystem fields of the security context can be overridden; the
hardening (non-root, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault) stays.

``affinity`` alone is a pass-through object (``x-kubernetes-preserve-unknown-fields``): core/v1 Affinity is
six levels of selector terms, and copying its schema would double the CRD for a field the API server
validates anyway when the workload's pod template is created. Its top-level keys are checked here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, WithJsonSchema, field_validator

from specforge_api.base import ApiModel, CrossFieldRule, exactly_one_of
from specforge_api.common import (
    AbsolutePath,
    AnnotationValue,
    DnsLabel,
    EmptyDirVolume,
    HostPathVolume,
    LabelValue,
    PersistentVolumeClaimVolume,
    Toleration,
)
from specforge_api.pod_contract import (
    OPERATOR_LABEL_KEYS,
    RESERVED_ENV_NAMES,
    RESERVED_MOUNT_PATHS,
    RESERVED_VOLUME_NAMES,
)

ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# DNS-1123 subdomain: Secret, ConfigMap and ServiceAccount names.
OBJECT_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
AFFINITY_KEYS = ("nodeAffinity", "podAffinity", "podAntiAffinity")

ObjectName = Annotated[str, Field(pattern=OBJECT_NAME_PATTERN, min_length=1, max_length=253)]


def _cel_list(values: tuple[str, ...] | frozenset[str]) -> str:
    return "[" + ", ".join(f"'{value}'" for value in sorted(values)) + "]"


class KeyReference(ApiModel):
    """One key of a Secret or ConfigMap in the run's namespace."""

    name: ObjectName = Field(description="Name of the Secret or ConfigMap.")
    key: str = Field(min_length=1, max_length=253, description="Key inside it.")
    optional: bool | None = Field(default=None, description="Start the pod even when the key is missing.")


class EnvVarSource(ApiModel):
    """Where an env value comes from: exactly one of a Secret key or a ConfigMap key."""

    secret_key_ref: KeyReference | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeyReference | None = Field(default=None, description="A key of a ConfigMap.")

    cross_field_rules = (exactly_one_of("secretKeyRef", "configMapKeyRef"),)


class EnvVar(ApiModel):
    """An environment variable of the pod's container (core/v1 EnvVar)."""

    name: str = Field(pattern=ENV_NAME_PATTERN, max_length=253, description="Variable name.")
    value: str | None = Field(default=None, max_length=32768, description="Literal value.")
    value_from: EnvVarSource | None = Field(
        default=None, description="Value read from a Secret or ConfigMap."
    )

    cross_field_rules = (
        CrossFieldRule(
            cel="!(has(self.value) && has(self.valueFrom))",
            message="value and valueFrom are mutually exclusive",
            holds=lambda env: env.value is None or env.value_from is None,
        ),
    )


class NameReference(ApiModel):
    """A Secret or ConfigMap in the run's namespace, by name."""

    name: ObjectName = Field(description="Name of the object.")
    optional: bool | None = Field(default=None, description="Start the pod even when it is missing.")


class EnvFromSource(ApiModel):
    """Every key of a Secret or ConfigMap as env (core/v1 EnvFromSource). Variables the operator sets
    win over keys of the same name (an explicit env entry takes precedence over envFrom)."""

    prefix: str | None = Field(
        default=None, pattern=ENV_NAME_PATTERN, max_length=253, description="Prepended to every key."
    )
    secret_ref: NameReference | None = Field(default=None, description="A Secret.")
    config_map_ref: NameReference | None = Field(default=None, description="A ConfigMap.")

    cross_field_rules = (exactly_one_of("secretRef", "configMapRef"),)


class SecretVolume(ApiModel):
    """A Secret's keys as files."""

    secret_name: ObjectName = Field(description="Name of the Secret.")
    optional: bool | None = Field(default=None, description="Start the pod even when it is missing.")


class ConfigMapVolume(ApiModel):
    """A ConfigMap's keys as files."""

    name: ObjectName = Field(description="Name of the ConfigMap.")
    optional: bool | None = Field(default=None, description="Start the pod even when it is missing.")


class ExtraVolume(ApiModel):
    """A volume added to the pod: exactly one of a PVC, a host path, an emptyDir, a Secret or a ConfigMap."""

    name: DnsLabel = Field(description="Volume name, referenced by volumeMounts.")
    persistent_volume_claim: PersistentVolumeClaimVolume | None = Field(
        default=None, description="An existing PersistentVolumeClaim."
    )
    host_path: HostPathVolume | None = Field(
        default=None, description="A directory on the node (refused unless the cluster admin allows it)."
    )
    empty_dir: EmptyDirVolume | None = Field(default=None, description="Pod-lifetime scratch space.")
    secret: SecretVolume | None = Field(default=None, description="A Secret's keys as files.")
    config_map: ConfigMapVolume | None = Field(default=None, description="A ConfigMap's keys as files.")

    cross_field_rules = (
        exactly_one_of("persistentVolumeClaim", "hostPath", "emptyDir", "secret", "configMap"),
    )


class VolumeMount(ApiModel):
    """Where one of `volumes` is mounted in the container."""

    name: DnsLabel = Field(description="Name of a volume in `volumes`.")
    mount_path: AbsolutePath = Field(description="Absolute path inside the container.")
    read_only: bool = Field(default=False, description="Mount read-only.")
    sub_path: str | None = Field(
        default=None, max_length=4096, pattern=r"^[^/].*$", description="A relative path inside the volume."
    )


class SecurityContextOverrides(ApiModel):
    """Identity and filesystem settings of the pod; the hardening (runAsNonRoot, no privilege escalation,
    all capabilities dropped, seccomp RuntimeDefault) cannot be turned off."""

    run_as_user: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="UID of the container (never root)."
    )
    run_as_group: int | None = Field(default=None, ge=0, le=2**31 - 1, description="GID of the container.")
    fs_group: int | None = Field(
        default=None, ge=0, le=2**31 - 1, description="Group that owns (and may write) the pod's volumes."
    )
    supplemental_groups: list[Annotated[int, Field(ge=0, le=2**31 - 1)]] = Field(
        default_factory=list, max_length=32, description="Further groups of the container's processes."
    )
    read_only_root_filesystem: bool | None = Field(
        default=None, description="Mount the container's root filesystem read-only."
    )


Affinity = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "maxProperties": len(AFFINITY_KEYS),
            "properties": {
                key: {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "description": f"core/v1 {key[0].upper()}{key[1:]}, passed through.",
                }
                for key in AFFINITY_KEYS
            },
        }
    ),
]


class PodOverrides(ApiModel):
    """What may be added to a set of pods the operator renders (a pool, the managed store)."""

    node_selector: dict[str, LabelValue] = Field(
        default_factory=dict, max_length=64, description="Node labels the pods must match."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, max_length=32, description="Taints the pods tolerate."
    )
    affinity: Affinity | None = Field(
        default=None,
        description="core/v1 Affinity (nodeAffinity, podAffinity, podAntiAffinity), passed through; the "
        "API server validates it when the pods are created.",
    )
    pod_labels: dict[str, LabelValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Labels added to the pods; the operator's own (app.kubernetes.io/*, specforge.io/run) "
        "cannot be overridden.",
    )
    pod_annotations: dict[str, AnnotationValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Annotations added to the pods (e.g. for a service mesh or KWOK).",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=64,
        description="Environment variables of the container, e.g. HF_TOKEN from a Secret or NCCL settings; "
        "the SPECFORGE_* and rank variables the operator and the workload set are reserved.",
    )
    env_from: list[EnvFromSource] = Field(
        default_factory=list, max_length=16, description="Secrets or ConfigMaps whose keys become env."
    )
    volumes: list[ExtraVolume] = Field(
        default_factory=list,
        max_length=16,
        description="Volumes added to the pods (mount them with volumeMounts).",
    )
    volume_mounts: list[VolumeMount] = Field(
        default_factory=list, max_length=16, description="Where the added volumes are mounted."
    )
    service_account_name: ObjectName | None = Field(
        default=None,
        description="ServiceAccount of the pods (e.g. for workload identity); for the trainer it is bound "
        "to the run's progress Role instead of the one the run creates.",
    )
    runtime_class_name: ObjectName | None = Field(
        default=None, description="RuntimeClass of the pods (e.g. nvidia, or a sandboxed runtime)."
    )
    security_context: SecurityContextOverrides = Field(
        default_factory=SecurityContextOverrides, description="Identity and filesystem settings."
    )

    cross_field_rules = (
        CrossFieldRule(
            cel=f"!has(self.env) || self.env.all(e, !(e.name in {_cel_list(RESERVED_ENV_NAMES)}))",
            message="the operator or the workload sets this variable: "
            + ", ".join(sorted(RESERVED_ENV_NAMES)),
            holds=lambda pod: not {e.name for e in pod.env} & RESERVED_ENV_NAMES,
            field="env",
        ),
        CrossFieldRule(
            cel=f"!has(self.volumes) || self.volumes.all(v, !(v.name in {_cel_list(RESERVED_VOLUME_NAMES)}))",
            message="the operator uses these volume names: " + ", ".join(sorted(RESERVED_VOLUME_NAMES)),
            holds=lambda pod: not {v.name for v in pod.volumes} & RESERVED_VOLUME_NAMES,
            field="volumes",
        ),
        CrossFieldRule(
            cel="!has(self.volumeMounts) || self.volumeMounts.all(m, "
            f"!(m.mountPath in {_cel_list(RESERVED_MOUNT_PATHS)}))",
            message="the operator mounts its own volumes at: " + ", ".join(sorted(RESERVED_MOUNT_PATHS)),
            holds=lambda pod: not {m.mount_path for m in pod.volume_mounts} & RESERVED_MOUNT_PATHS,
            field="volumeMounts",
        ),
        CrossFieldRule(
            cel="!has(self.volumeMounts) || self.volumeMounts.all(m, "
            "has(self.volumes) && self.volumes.exists(v, v.name == m.name))",
            message="every volumeMount names a volume in volumes",
            holds=lambda pod: {m.name for m in pod.volume_mounts} <= {v.name for v in pod.volumes},
            field="volumeMounts",
        ),
        CrossFieldRule(
            cel=f"!has(self.podLabels) || !self.podLabels.exists(k, k in {_cel_list(OPERATOR_LABEL_KEYS)})",
            message="the operator's selectors use these labels: " + ", ".join(sorted(OPERATOR_LABEL_KEYS)),
            holds=lambda pod: not set(pod.pod_labels) & OPERATOR_LABEL_KEYS,
            field="podLabels",
        ),
    )

    @field_validator("affinity")
    @classmethod
    def _affinity_kinds(cls, affinity: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = set(affinity or {}) - set(AFFINITY_KEYS)
        if unknown:
            raise ValueError(f"affinity: unknown keys {sorted(unknown)}; allowed: {', '.join(AFFINITY_KEYS)}")
        return affinity

    def mounted_paths(self) -> set[str]:
        return {mount.mount_path for mount in self.volume_mounts}
