"""The DataFlow control plane: records, metadata stores, the ref queue and the controller.

Standard library (plus redis-py for :class:`RedisMetadataStore`, imported on first use) — never torch.
"""

from specforge_api.modes import DeploymentMode

from .controller import ControlPlaneStatus, DataFlowController, FeatureStore, ReconcileReport
from .queue import SampleRefQueue
from .records import SCHEMA_VERSION, FeatureSpec, SampleRef, TensorInRefError, assert_no_tensors
from .resolve import resolve_control_plane
from .scope import run_scope
from .stores import (
    DurableMarker,
    InMemoryMetadataStore,
    MetadataStore,
    MetadataStoreLost,
    NoOpMetadataStore,
    SQLiteMetadataStore,
    StoreAuthError,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
    UnknownSampleError,
)

__all__ = [
    "SCHEMA_VERSION",
    "ControlPlaneStatus",
    "DataFlowController",
    "DeploymentMode",
    "DurableMarker",
    "FeatureSpec",
    "FeatureStore",
    "InMemoryMetadataStore",
    "MetadataStore",
    "MetadataStoreLost",
    "NoOpMetadataStore",
    "ReconcileReport",
    "RedisMetadataStore",
    "SQLiteMetadataStore",
    "SampleRef",
    "SampleRefQueue",
    "StoreAuthError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "TensorInRefError",
    "UnknownSampleError",
    "assert_no_tensors",
    "resolve_control_plane",
    "run_scope",
]


def __getattr__(name: str) -> object:
    from . import stores  # RedisMetadataStore is imported lazily there

    return getattr(stores, name)
