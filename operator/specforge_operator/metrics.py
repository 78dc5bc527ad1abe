"""The operator's Prometheus endpoint and metrics: reconciles by result and their latency, runs by phase
and mode, children created or restored, plus process and Python runtime metrics, on a port of its own.

Started from the entry point (not from a kopf handler) so a standby replica that peering keeps paused
still answers scrapes, and so the port is open before kopf's first watch. Off unless a port is given:
tests and local runs need no listener.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import Counter, Gauge, Histogram, start_http_server

METRICS_PORT_ENV = "SPECFORGE_METRICS_PORT"


def metrics_port_from_env(environ: dict[str, str] | None = None) -> int | None:
    """The port in ``$SPECFORGE_METRICS_PORT``, or None when unset; a malformed value is an error."""
    raw = (os.environ if environ is None else environ).get(METRICS_PORT_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"{METRICS_PORT_ENV} must be a TCP port number (1-65535), got {raw!r}")
    return int(raw)


def serve_metrics(port: int, address: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` from a daemon thread for the life of the process."""
    start_http_server(port, addr=address)


# What the operator does, for dashboards and alerts. Names follow Prometheus conventions; the client adds
# _total to counters and _bucket/_sum/_count to the histogram.
RECONCILES = Counter(
    "specforge_reconciles", "Reconciles of SpecForgeRuns by result.", ["result"]
)  # result: changed (status written) | unchanged | invalid (bad spec) | error (retried)
RECONCILE_SECONDS = Histogram(
    "specforge_reconcile_duration_seconds",
    "Time to reconcile one SpecForgeRun (children applied, status derived and written).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RUNS = Gauge(
    "specforge_runs",
    "SpecForgeRuns this replica reconciles, by phase and deployment mode.",
    ["phase", "mode"],
)
CHILDREN = Counter(
    "specforge_children", "Children the operator created, by kind and action.", ["kind", "action"]
)  # action: created (first time) | restored (it existed before and was deleted)


def record_reconcile(result: str, seconds: float) -> None:
    RECONCILES.labels(result=result).inc()
    RECONCILE_SECONDS.observe(seconds)


def record_child_created(kind: str, *, restored: bool) -> None:
    CHILDREN.labels(kind=kind, action="restored" if restored else "created").inc()


class RunCensus:
    """Each run's last phase and mode, kept in the ``specforge_runs`` gauge (thread-safe)."""

    def __init__(self, gauge: Gauge = RUNS) -> None:
        self._gauge = gauge
        self._runs: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def observe(self, uid: str, phase: str, mode: str) -> None:
        with self._lock:
            previous = self._runs.get(uid)
            if previous == (phase, mode):
                return
            if previous is not None:
                self._gauge.labels(*previous).dec()
            self._runs[uid] = (phase, mode)
            self._gauge.labels(phase, mode).inc()

    def forget(self, uid: str) -> None:
        with self._lock:
            previous = self._runs.pop(uid, None)
            if previous is not None:
                self._gauge.labels(*previous).dec()
