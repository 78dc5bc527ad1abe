"""Store fixtures for the contract suite: every store the control plane has, built the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from specforge_trainer.control_plane import (
    InMemoryMetadataStore,
    MetadataStore,
    NoOpMetadataStore,
    SQLiteMetadataStore,
)
from specforge_trainer.local_redis import LocalRedisServer


@pytest.fixture
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., MetadataStore]]:
    """``store_factory(run_id)`` builds the parametrised store kind; all share one backing file/server."""
    kind = request.param
    server = None
    if kind == "redis":
        server = LocalRedisServer(tmp_path / "redis").start()
    stores: list[MetadataStore] = []

    def build(run_id: str = "run-a") -> MetadataStore:
        store: MetadataStore
        if kind == "noop":
            store = NoOpMetadataStore()
        elif kind == "memory":
            store = InMemoryMetadataStore()
        elif kind == "sqlite":
            store = SQLiteMetadataStore(tmp_path / "meta.db", run_id=run_id)
        else:
            from specforge_trainer.control_plane import RedisMetadataStore

            assert server is not None
            store = RedisMetadataStore(server.url, run_id=run_id)
        stores.append(store)
        return store

    build.kind = kind  # type: ignore[attr-defined]
    yield build
    for store in stores:
        store.close()
    if server is not None:
        server.close()
