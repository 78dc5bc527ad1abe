"""Store fixtures for the contract suite: every store the control plane has, built the same way."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from specforge_trainer.control_plane import (
    InMemoryMetadataStore,
    MetadataStore,
    NoOpMetadataStore,
    SQLiteMetadataStore,
)
from specforge_trainer.control_plane import controller as controller_module
from specforge_trainer.control_plane.stores import memory as memory_module
from specforge_trainer.control_plane.stores import sqlite as sqlite_module
from specforge_trainer.local.redis_server import LocalRedisServer


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


class VirtualClock:
    """Stands in for the ``time`` module where the control plane reads the time (lease expiry, heartbeats,
    wait loops): a lease then expires when the test moves the clock, not when a loaded machine gets round
    to it, and the boundaries are exact. ``sleep`` moves the clock (a wait loop ends at once)."""

    real = False

    def __init__(self) -> None:
        self._now = 1_000_000.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    time = monotonic

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        time.sleep(0)  # let other threads run, as a real sleep would


class RealClock:
    """The Redis store keeps lease time on the server: there, the test waits for real."""

    real = True
    monotonic = staticmethod(time.monotonic)
    advance = staticmethod(time.sleep)


#: The modules that read the time to expire leases and pace heartbeats.
CLOCKED_MODULES = (controller_module, memory_module, sqlite_module)


@pytest.fixture
def lease_clock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> VirtualClock | RealClock:
    """The clock lease tests move: virtual for every store but Redis (whose server keeps the time)."""
    kind = getattr(request.node, "callspec", None) and request.node.callspec.params.get("store_factory")
    if kind == "redis":
        return RealClock()
    clock = VirtualClock()
    for module in CLOCKED_MODULES:
        monkeypatch.setattr(module, "time", clock)
    return clock
