"""Supervisor: the processes of a local multi-process run, started together and stopped together.

``specforge run`` uses it for the durable modes on one machine: a redis-server, feature producers
and trainer ranks as OS processes. The run succeeds when every *worker* exits 0 (services such as
redis-server are then stopped); the first worker to fail, or Ctrl-C, stops everything, and the
error names the process, how it ended and the tail of its log. Each process gets its own process
group so a stop reaches its children (torchrun's ranks) too, and is asked by the kernel to stop when
the supervisor dies (``die_with_parent``), so a ``kill -9`` of ``specforge run`` leaves nothing writing
into the output directory behind it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    #: A service runs until the workers are done (e.g. redis-server); its exit is a failure.
    service: bool = False
    #: Stream this process's output to the terminal as well as to its log (e.g. rank 0's progress).
    foreground: bool = False


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """In a child before exec: have the kernel send ``sig`` when the parent dies (Linux prctl).

    SIGTERM rather than SIGKILL so torchrun passes it on to its ranks and redis-server closes its file.
    A parent that died before the prctl took effect would never signal, so check for that too.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)


def popen_dying_with_parent(argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` whose child is signalled when this process dies, however it dies."""
    parent = os.getpid()
    return subprocess.Popen(list(argv), preexec_fn=lambda: die_with_parent(parent), **kwargs)  # type: ignore[call-overload]


class ProcessFailed(RuntimeError):
    def __init__(self, name: str, how: str, log_path: Path, log_tail: str) -> None:
        self.name, self.how, self.log_path = name, how, log_path
        super().__init__(f"{name} {how}; last lines of {log_path}:\n{log_tail}")


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class Supervisor:
    def __init__(
        self, log_dir: str | Path, *, stop_grace_s: float = 10.0, poll_interval_s: float = 0.1
    ) -> None:
        self.log_dir = Path(log_dir)
        self.stop_grace_s = stop_grace_s
        self.poll_interval_s = poll_interval_s
        self._procs: dict[str, tuple[ProcessSpec, subprocess.Popen[bytes], IO[bytes]]] = {}

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        if spec.name in self._procs:
            raise ValueError(f"a process named {spec.name!r} is already supervised")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(spec.name), "ab")  # noqa: SIM115 - closed in stop_all
        proc = popen_dying_with_parent(
            spec.argv,
            env={**os.environ, **spec.env},
            stdout=None if spec.foreground else log,
            stderr=None if spec.foreground else subprocess.STDOUT,
            start_new_session=True,
        )
        self._procs[spec.name] = (spec, proc, log)
        return proc

    def wait(self, timeout_s: float | None = None) -> None:
        """Return when every worker exited 0; raise :class:`ProcessFailed` (after stopping all) otherwise."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while True:
                workers_running = False
                for spec, proc, _ in self._procs.values():
                    code = proc.poll()
                    if code is None:
                        workers_running |= not spec.service
                    elif code != 0 or spec.service:
                        raise ProcessFailed(
                            spec.name,
                            describe_exit(code),
                            self.log_path(spec.name),
                            tail(self.log_path(spec.name)),
                        )
                if not workers_running:
                    return
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"workers still running after {timeout_s}s: {self.running()}")
                time.sleep(self.poll_interval_s)
        finally:
            self.stop_all()

    def running(self) -> list[str]:
        return [name for name, (_, proc, _) in self._procs.items() if proc.poll() is None]

    def stop_all(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after the grace period."""
        live = [proc for _, proc, _ in self._procs.values() if proc.poll() is None]
        for proc in live:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_grace_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for _, _, log in self._procs.values():
            log.close()

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
