"""Launch the operator as a child process and wait until it is live (e2e tests and benchmarks).

The child is exactly what a Deployment would run (``python -m specforge_operator``), with kopf's liveness
endpoint on a free loopback port so readiness is observed, not guessed. Neither kopf's liveness endpoint
nor the metrics server reports a port it chose itself, so the ports are picked here (bind port 0, read
it, release it); when another process takes one in between, the operator exits on the bind and
:meth:`OperatorProcess.wait_live` starts it again on fresh ports.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

# How a child that lost its port to another process says so (aiohttp's and the standard library's words).
_PORT_TAKEN = ("address already in use", "error while attempting to bind")
_PORT_RETRIES = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    def __init__(
        self,
        kubeconfig: str,
        log_path: Path,
        *,
        resync_seconds: float = 60.0,
        workers: int = 8,
        scope_args: Sequence[str] = ("--all-namespaces",),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.log_path = log_path
        self._env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "SPECFORGE_RESYNC_SECONDS": str(resync_seconds),
            "SPECFORGE_WORKERS": str(workers),
            **(extra_env or {}),
        }
        self._scope_args = list(scope_args)
        self._log = log_path.open("a")
        self._spawn()

    def _spawn(self) -> None:
        self.liveness_port = _free_port()
        self.metrics_port = _free_port()
        self._log_start = self.log_path.stat().st_size
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "specforge_operator",
                *self._scope_args,
                f"--liveness=http://127.0.0.1:{self.liveness_port}/healthz",
            ],
            env={**self._env, "SPECFORGE_METRICS_PORT": str(self.metrics_port)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _lost_its_port(self) -> bool:
        with self.log_path.open() as log:
            log.seek(self._log_start)
            text = log.read().lower()
        return any(words in text for words in _PORT_TAKEN)

    def wait_live(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        retries = _PORT_RETRIES
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if retries and self._lost_its_port():
                    retries -= 1
                    self._spawn()
                    continue
                raise RuntimeError(f"operator exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                url = f"http://127.0.0.1:{self.liveness_port}/healthz"
                with urllib.request.urlopen(url, timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"operator not live after {timeout:.0f} s:\n{self.log_tail()}")

    def _samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return [
            (sample.labels, float(sample.value))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        ]

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` matching ``labels`` on the operator's Prometheus endpoint."""
        return sum(
            value
            for sample_labels, value in self._samples(name)
            if all(sample_labels.get(key) == wanted for key, wanted in labels.items())
        )

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no peering record withdrawn (a crash, an evicted pod)."""
        self.process.kill()
        self.process.wait()
        self._log.close()

    def rss_bytes(self) -> tuple[int, int]:
        """(current, peak) resident set size of the operator process."""
        fields = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
            if ":" in line
        )
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])

    def restart(self) -> None:
        """Stop, then start a new process with the same settings: nothing the old one held in memory."""
        self.stop()
        self._log = self.log_path.open("a")
        self._spawn()
        self.wait_live()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
