"""Bad Redis input: clear errors within a bounded time, never a hang."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from specforge_trainer.control_plane import StoreAuthError, StoreUnavailableError
from specforge_trainer.local.redis_server import free_port

pytestmark = pytest.mark.integration


def redis_store(url: str, **kwargs):
    from specforge_trainer.control_plane import RedisMetadataStore

    return RedisMetadataStore(url, **kwargs)


def test_a_closed_port_fails_fast_naming_the_url():
    url = f"redis://127.0.0.1:{free_port()}/0"
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailableError, match=f"127.0.0.1:{url.split(':')[-1].split('/')[0]}"):
        redis_store(url)
    assert time.monotonic() - t0 < 3


@pytest.fixture
def silent_listener():
    """A TCP port whose kernel completes the handshake but where nothing ever replies."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


def test_a_server_that_never_answers_is_bounded_by_the_timeouts(silent_listener):
    port = silent_listener.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="did not answer"):
        redis_store(f"redis://127.0.0.1:{port}/0", connect_timeout_s=1.0, command_timeout_s=1.0)
    assert time.monotonic() - t0 < 5


def test_a_server_that_is_not_redis_is_named_as_such(silent_listener):
    port = silent_listener.getsockname()[1]

    def answer_http() -> None:
        conn, _ = silent_listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.close()

    threading.Thread(target=answer_http, daemon=True).start()
    with pytest.raises(StoreUnavailableError, match="does not speak the Redis protocol"):
        redis_store(f"redis://127.0.0.1:{port}/0", command_timeout_s=2.0)


def test_wrong_and_missing_passwords_are_auth_errors_and_the_password_is_not_logged(
    redis_server_factory, monkeypatch
):
    server = redis_server_factory(password="s3cret")
    bad = server.url.replace("s3cret", "wrong")
    with pytest.raises(StoreAuthError, match="refused the password") as err:
        redis_store(bad)
    assert "wrong" not in str(err.value) and "***" in str(err.value)
    monkeypatch.delenv("SPECFORGE_METADATA_PASSWORD", raising=False)
    with pytest.raises(StoreAuthError, match="SPECFORGE_METADATA_PASSWORD"):
        redis_store(f"redis://127.0.0.1:{server.port}/0")
    monkeypatch.setenv("SPECFORGE_METADATA_PASSWORD", "s3cret")
    assert redis_store(f"redis://127.0.0.1:{server.port}/0").committed_count() == 0  # password from the env


def test_a_store_outage_longer_than_the_reconnect_window_is_a_clear_error(redis_server):
    store = redis_store(redis_server.url, reconnect_timeout_s=1.0)
    redis_server.kill()
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="unavailable for 1s"):
        store.committed_count()
    assert time.monotonic() - t0 < 4


def test_a_url_that_is_not_redis_is_refused_before_connecting():
    with pytest.raises(ValueError, match="redis://"):
        redis_store("http://127.0.0.1:6379")
