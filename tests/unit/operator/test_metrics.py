"""Operator metrics: the runs-by-phase census and the reconcile/children counters, read back from a registry."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from specforge_operator.metrics import RunCensus, record_child_created, record_reconcile


def test_census_moves_each_run_between_phases_and_forgets_deleted_ones() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("runs", "test", ["phase", "mode"], registry=registry)
    census = RunCensus(gauge)

    def count(phase: str, mode: str = "dataflow_colocated") -> float:
        return registry.get_sample_value("runs", {"phase": phase, "mode": mode}) or 0.0

    census.observe("a", "Pending", "dataflow_colocated")
    census.observe("b", "Pending", "dataflow_colocated")
    census.observe("a", "Running", "dataflow_colocated")
    census.observe("a", "Running", "dataflow_colocated")  # unchanged: no double count
    census.observe("c", "Running", "local_colocated")
    assert (count("Pending"), count("Running"), count("Running", "local_colocated")) == (1, 1, 1)
    census.forget("b")
    census.forget("never-seen")
    assert (count("Pending"), count("Running")) == (0, 1)


def test_reconcile_and_children_counters() -> None:
    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        sample("specforge_reconciles_total", result="changed"),
        sample("specforge_reconcile_duration_seconds_count"),
        sample("specforge_children_total", kind="PyTorchJob", action="restored"),
    )
    record_reconcile("changed", 0.02)
    record_child_created("PyTorchJob", restored=True)
    after = (
        sample("specforge_reconciles_total", result="changed"),
        sample("specforge_reconcile_duration_seconds_count"),
        sample("specforge_children_total", kind="PyTorchJob", action="restored"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
