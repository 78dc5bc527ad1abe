"""Fixtures shared by every test layer: real services on free ports, cleaned up afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest
from specforge_trainer.local.redis_server import LocalRedisServer

pytest_plugins = ["_support.timings"]


@pytest.fixture
def redis_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LocalRedisServer]]:
    """Start real ``redis-server`` processes (AOF on, ``appendfsync always`` unless asked otherwise)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `make system-deps` (the README's `make test` does)")
    servers: list[LocalRedisServer] = []

    def start(**kwargs: object) -> LocalRedisServer:
        server = LocalRedisServer(tmp_path_factory.mktemp("redis"), **kwargs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def redis_server(redis_server_factory: Callable[..., LocalRedisServer]) -> LocalRedisServer:
    return redis_server_factory()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with real-pod tests run last: `make test` starts the cluster lane while the images still
    build, and their fixture waits for that build, so every other cluster test goes first. Whole modules
    move, so no module-scoped fixture is set up twice."""
    real_pod_modules = {item.path for item in items if item.get_closest_marker("realnode")}
    items.sort(key=lambda item: item.path in real_pod_modules)
