"""LocalRedisServer: a real ``redis-server`` child process on a free loopback port.

Used by ``specforge run`` for durable modes without a URL, by the integration tests and by the
benchmarks. Persistence is explicit: AOF with ``appendfsync always`` by default, because that is
what makes an acked sample survive ``kill -9`` on Redis < 7.2 (see the Redis metadata store).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from specforge_trainer.local.supervisor import popen_dying_with_parent

#: Starts on another free port after a bind failure: redis-server cannot bind port 0 (it means "no TCP")
#: and report it, so a port found free can be taken by another process before redis binds it.
PORT_ATTEMPTS = 5


class PortTaken(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRedisServer:
    def __init__(
        self,
        data_dir: str | Path | None = None,
        *,
        port: int | None = None,
        appendonly: bool = True,
        appendfsync: str = "always",
        password: str | None = None,
        executable: str = "redis-server",
        config_args: Sequence[str] | None = None,
    ) -> None:
        """``config_args``: redis-server options to run with instead of the persistence and password
        options built from ``appendonly``, ``appendfsync`` and ``password`` (which then only names the
        password for :attr:`url`); port, address, directory and logging stay this object's."""
        found = shutil.which(executable)
        if found is None:
            raise FileNotFoundError(
                f"{executable} not found on PATH: install it (Debian: apt-get install redis-server, "
                "or `make system-deps`) or give the run a metadata store URL"
            )
        self.executable = found
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="specforge-redis-"))
        self._port_movable = port is None  # ours to change if another process binds it first
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.password = password
        self.config_args = list(config_args) if config_args is not None else None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def _argv(self) -> list[str]:
        # redis-server reads a config file only as its first argument; our options after it override it.
        config = self.config_args or []
        config_file = config[:1] if config and not config[0].startswith("-") else []
        argv = [
            self.executable,
            *config_file,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        if self.config_args is not None:
            return argv + self.config_args[len(config_file) :]
        argv += [
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        return argv

    def start(self, timeout_s: float = 10.0) -> LocalRedisServer:
        attempts = PORT_ATTEMPTS if self._port_movable else 1
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(timeout_s)
                break
            except PortTaken:
                if attempt == attempts:
                    raise
                self.port = free_port()
        self._port_movable = False  # clients now hold the URL: a restart must come back on it
        return self

    def _start_once(self, timeout_s: float) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir / "redis.log"
        log_offset = log_path.stat().st_size if log_path.exists() else 0  # earlier starts' lines stay
        self.process = popen_dying_with_parent(
            self._argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = log_path.read_bytes()[log_offset:].decode(errors="replace")[-2000:]
                failure = PortTaken if "Address already in use" in log else RuntimeError
                raise failure(f"redis-server exited with {self.process.returncode}:\n{log}")
            if self._answers():
                return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"redis-server on port {self.port} did not answer within {timeout_s}s")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
            return reply.startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: what a crash looks like (no shutdown save, no final fsync)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> LocalRedisServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalRedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
