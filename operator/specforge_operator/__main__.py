"""``python -m specforge_operator [kopf run options]``: run the operator with its handlers loaded.

Defaults to ``--standalone`` (no kopf peering CRDs needed; run one replica); pass ``--peering NAME``
to opt into peering instead. With peering and no ``--priority``, each process draws a random priority:
kopf pauses every peer when two share one, so replicas of one Deployment must differ, and the highest
stays active while the others stand by. ``$SPECFORGE_METRICS_PORT`` opens a Prometheus endpoint;
``$SPECFORGE_HEAP_TRIM_SECONDS`` sets how often freed heap memory goes back to the OS (0: never).
"""

from __future__ import annotations

import secrets
import sys
import threading

import kopf.cli

from specforge_operator.heap_trim import heap_trim_interval_from_env, start_heap_trimming
from specforge_operator.metrics import metrics_port_from_env, serve_metrics


def kopf_run_args(args: list[str]) -> list[str]:
    """The ``kopf run`` command line for our options: standalone by default, a priority when peering."""
    args = list(args)
    peering = any(arg == "-P" or arg.startswith("--peering") for arg in args)
    if not peering and "--standalone" not in args:
        args.append("--standalone")
    if peering and not any(arg in ("--priority", "-p") or arg.startswith("--priority=") for arg in args):
        args.append(f"--priority={secrets.randbelow(2**31 - 2) + 1}")
    return ["run", "--module", "specforge_operator.handlers", *args]


def main(argv: list[str] | None = None) -> None:
    trim_interval = heap_trim_interval_from_env()
    port = metrics_port_from_env()
    if port is not None:
        serve_metrics(port)
    start_heap_trimming(trim_interval, threading.Event())  # for the life of the process
    kopf.cli.main(kopf_run_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
