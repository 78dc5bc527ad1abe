"""Where a run's features and checkpoints live: the volume the spec names, or one the run provides.

An unset volume means an emptyDir in local_colocated (one pod, nothing to share or resume across pods)
and, in the durable modes, a PersistentVolumeClaim the run creates from the spec's claim template and
owns: it outlives pods, so a replaced pod resumes from the newest checkpoint and finds the features
other pods wrote, and it is deleted with the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specforge_api.common import EmptyDirVolume, PersistentVolumeClaimVolume, VolumeSource
from specforge_api.pod_contract import Volumes
from specforge_api.run import SpecForgeRun
from specforge_api.spec import MountedStorage

from specforge_operator.render.meta import ChildNames, object_meta

STORAGE_COMPONENT = "storage"


@dataclass(frozen=True)
class RunDirectory:
    volume_name: str
    mount_path: str
    source: VolumeSource
    claim: dict[str, Any] | None  # the PVC manifest the run creates for it, if any


def _directory(run: SpecForgeRun, volume_name: str, storage: MountedStorage, claim_name: str) -> RunDirectory:
    if storage.volume is not None:
        return RunDirectory(volume_name, storage.path, storage.volume, None)
    if not run.spec.deployment_mode.durable:
        return RunDirectory(volume_name, storage.path, VolumeSource(empty_dir=EmptyDirVolume()), None)
    template = storage.claim
    spec: dict[str, Any] = {
        "accessModes": list(template.access_modes),
        "resources": {"requests": {"storage": template.size}},
    }
    if template.storage_class_name is not None:
        spec["storageClassName"] = template.storage_class_name
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_meta(run, claim_name, STORAGE_COMPONENT),
        "spec": spec,
    }
    source = VolumeSource(persistent_volume_claim=PersistentVolumeClaimVolume(claim_name=claim_name))
    return RunDirectory(volume_name, storage.path, source, claim)


def run_directories(run: SpecForgeRun) -> list[RunDirectory]:
    """The feature store and the checkpoint directory, in that order."""
    names = ChildNames(run.name)
    return [
        _directory(run, Volumes.FEATURES, run.spec.feature_store, names.features),
        _directory(run, Volumes.CHECKPOINTS, run.spec.checkpoints, names.checkpoints),
    ]


def storage_claims(run: SpecForgeRun) -> list[dict[str, Any]]:
    return [directory.claim for directory in run_directories(run) if directory.claim is not None]
