"""The SpecForgeRun API (specforge.io/v1alpha1): the single definition the CRD, operator and trainer share.

Importable with only pydantic and PyYAML installed.
"""

from specforge_api.common import Resources, Toleration, VolumeSource
from specforge_api.manifest import ManifestError, load_run_manifest, parse_run_manifest
from specforge_api.modes import DeploymentMode
from specforge_api.run import API_VERSION, GROUP, KIND, PLURAL, VERSION, ObjectMeta, SpecForgeRun
from specforge_api.spec import (
    DatasetSource,
    FeatureMode,
    MetadataStoreSpec,
    SpecForgeRunSpec,
    TargetModelSource,
    TrainingConfig,
)
from specforge_api.status import Condition, Phase, Progress, SpecForgeRunStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "VERSION",
    "Condition",
    "DatasetSource",
    "DeploymentMode",
    "FeatureMode",
    "ManifestError",
    "MetadataStoreSpec",
    "ObjectMeta",
    "Phase",
    "Progress",
    "Resources",
    "SpecForgeRun",
    "SpecForgeRunSpec",
    "SpecForgeRunStatus",
    "TargetModelSource",
    "Toleration",
    "TrainingConfig",
    "VolumeSource",
    "load_run_manifest",
    "parse_run_manifest",
]
