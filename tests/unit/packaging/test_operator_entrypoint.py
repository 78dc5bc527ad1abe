"""The operator entry point's own options: standalone by default, distinct priorities under peering, and
the metrics port read strictly from the environment."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from specforge_operator.__main__ import kopf_run_args
from specforge_operator.metrics import metrics_port_from_env, serve_metrics


def _priority(args: list[str]) -> int:
    (value,) = [arg.removeprefix("--priority=") for arg in args if arg.startswith("--priority=")]
    return int(value)


def test_defaults_to_standalone_without_priority() -> None:
    args = kopf_run_args(["--all-namespaces"])
    assert args[:3] == ["run", "--module", "specforge_operator.handlers"]
    assert "--standalone" in args
    assert not any(arg.startswith("--priority") for arg in args)


def test_peering_replicas_draw_distinct_positive_priorities() -> None:
    priorities = {_priority(kopf_run_args(["--peering=specforge", "--all-namespaces"])) for _ in range(50)}
    assert len(priorities) == 50
    assert min(priorities) > 0
    assert "--standalone" not in kopf_run_args(["--peering=specforge"])


def test_an_explicit_priority_is_kept() -> None:
    args = kopf_run_args(["--peering", "specforge", "--priority", "7"])
    assert args.count("--priority") == 1
    assert not any(arg.startswith("--priority=") for arg in args)


@pytest.mark.parametrize(("raw", "port"), [("", None), ("9090", 9090), (" 8080 ", 8080)])
def test_metrics_port_from_env(raw: str, port: int | None) -> None:
    assert metrics_port_from_env({"SPECFORGE_METRICS_PORT": raw}) == port
    assert metrics_port_from_env({}) is None


@pytest.mark.parametrize("raw", ["http", "0", "70000", "-1"])
def test_metrics_port_rejects_malformed_values(raw: str) -> None:
    with pytest.raises(ValueError, match="SPECFORGE_METRICS_PORT"):
        metrics_port_from_env({"SPECFORGE_METRICS_PORT": raw})


def test_serve_metrics_answers_prometheus_scrapes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_metrics(port, address="127.0.0.1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        body = reply.read().decode()
    assert reply.status == 200
    assert "process_resident_memory_bytes" in body and "python_info" in body
