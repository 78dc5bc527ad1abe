"""Metadata stores: NoOp, in-memory, SQLite, Redis — one contract (:class:`MetadataStore`)."""

from .base import (
    DurableMarker,
    MetadataStore,
    MetadataStoreLost,
    StoreAuthError,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
    UnknownSampleError,
)
from .memory import InMemoryMetadataStore
from .noop import NoOpMetadataStore
from .sqlite import SQLiteMetadataStore

__all__ = [
    "DurableMarker",
    "InMemoryMetadataStore",
    "MetadataStore",
    "MetadataStoreLost",
    "NoOpMetadataStore",
    "RedisMetadataStore",
    "SQLiteMetadataStore",
    "StoreAuthError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailableError",
    "UnknownSampleError",
]


def __getattr__(name: str) -> object:
    if name == "RedisMetadataStore":  # imported lazily: redis-py is needed only by runs that use it
        from .redis import RedisMetadataStore

        return RedisMetadataStore
    raise AttributeError(name)
