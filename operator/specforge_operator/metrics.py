"""The operator's Prometheus endpoint: process and Python runtime metrics on a port of its own.

Started from the entry point (not from a kopf handler) so a standby replica that peering keeps paused
still answers scrapes, and so the port is open before kopf's first watch. Off unless a port is given:
tests and local runs need no listener.
"""

from __future__ import annotations

import os

from prometheus_client import start_http_server

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
