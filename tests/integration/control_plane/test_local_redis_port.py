"""LocalRedisServer picks its port before redis-server binds it; when another process binds it first, the
server starts on another free port, and a port the caller chose is never silently changed."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from specforge_trainer.local import redis_server
from specforge_trainer.local.redis_server import LocalRedisServer, PortTaken

pytestmark = pytest.mark.integration


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield int(squatter.getsockname()[1])


def test_a_port_taken_before_redis_binds_it_is_replaced(taken_port, tmp_path, monkeypatch) -> None:
    picks, real_free_port = iter([taken_port]), redis_server.free_port
    monkeypatch.setattr(redis_server, "free_port", lambda: next(picks, None) or real_free_port())
    with LocalRedisServer(tmp_path / "redis", appendonly=False) as server:
        assert server.port != taken_port
        assert server.url.endswith(f":{server.port}/0")


def test_a_restart_never_moves_off_the_port_its_clients_hold(tmp_path) -> None:
    with LocalRedisServer(tmp_path / "redis", appendonly=False) as server, socket.socket() as squatter:
        url = server.url
        server.stop()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past the stopped server's TIME_WAITs
        squatter.bind(("127.0.0.1", server.port))
        squatter.listen()
        with pytest.raises(PortTaken):
            server.restart()
        assert server.url == url


def test_a_port_the_caller_chose_is_kept(taken_port, tmp_path) -> None:
    server = LocalRedisServer(tmp_path / "redis", port=taken_port, appendonly=False)
    with pytest.raises(PortTaken, match="Address already in use"):
        server.start()
