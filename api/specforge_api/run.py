"""The SpecForgeRun resource as a whole: identity constants, object metadata, spec and status.

The name rules here are stricter than Kubernetes' own because the run name prefixes its children (a
Service name must be a DNS-1035 label, and suffixes such as ``-producers`` need room).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from specforge_api.base import ApiModel
from specforge_api.spec import SpecForgeRunSpec
from specforge_api.status import SpecForgeRunStatus

GROUP = "specforge.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SpecForgeRun"
PLURAL = "specforgeruns"
SINGULAR = "specforgerun"
SHORT_NAMES = ("sfr",)
MAX_RUN_NAME_LENGTH = 40
RUN_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class ObjectMeta(ApiModel):
    """The subset of metav1.ObjectMeta a run needs; everything else the API server adds is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(
        pattern=RUN_NAME_PATTERN,
        min_length=1,
        max_length=MAX_RUN_NAME_LENGTH,
        description="Run name: a DNS-1035 label of at most 40 characters (it prefixes child names).",
    )
    namespace: str = Field(
        default="default", min_length=1, max_length=63, description="Namespace of the run."
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels of the run.")
    annotations: dict[str, str] = Field(default_factory=dict, description="Annotations of the run.")
    uid: str | None = Field(default=None, description="Set by the API server.")
    generation: int | None = Field(default=None, description="Set by the API server.")


# The API server only checks that a name is a DNS subdomain; this rule (emitted at the CRD root) makes it
# check what ObjectMeta.name checks in Python.
RUN_NAME_VALIDATION = {
    "rule": f"size(self.metadata.name) <= {MAX_RUN_NAME_LENGTH} && self.metadata.name.matches('{RUN_NAME_PATTERN}')",
    "message": f"metadata.name must be a DNS-1035 label of at most {MAX_RUN_NAME_LENGTH} characters",
}


class SpecForgeRun(ApiModel):
    """A SpecForge EAGLE3 draft-model training run."""

    api_version: Literal["specforge.io/v1alpha1"] = Field(
        default="specforge.io/v1alpha1", description="specforge.io/v1alpha1"
    )
    kind: Literal["SpecForgeRun"] = Field(default="SpecForgeRun", description="SpecForgeRun")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: SpecForgeRunSpec = Field(description="Desired state.")
    status: SpecForgeRunStatus | None = Field(default=None, description="Observed state.")

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    def spec_manifest(self) -> dict[str, Any]:
        """The run without status and server-set metadata: what a user would apply (and the trainer reads)."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": self.spec.to_wire(),
        }
