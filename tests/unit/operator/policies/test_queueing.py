"""Ownership of the workload's suspend field with and without a queue, table-driven."""

from __future__ import annotations

import pytest
from specforge_operator.plan import plan_children
from specforge_operator.policies.queueing import (
    SuspendOwnership,
    suspend_ownership,
    with_suspend,
    workload_suspended,
)
from unit.operator.builders import build_run

# (queue, spec.suspend, workload exists) → ownership
CASES = {
    "no queue, running": ((None, False, True), SuspendOwnership.OPERATOR),
    "no queue, suspended": ((None, True, False), SuspendOwnership.OPERATOR),
    "queue, absent: create suspended": (("team-a", False, False), SuspendOwnership.CREATE_SUSPENDED),
    "queue, present: the queue decides": (("team-a", False, True), SuspendOwnership.QUEUE),
    "queue but suspended by the user: operator suspends": (("team-a", True, True), SuspendOwnership.OPERATOR),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
def test_suspend_ownership(given: tuple, expected: SuspendOwnership) -> None:
    queue, suspend, exists = given
    run = build_run("dataflow_colocated", suspend=suspend, scheduling={"queueName": queue} if queue else {})
    assert suspend_ownership(run, workload_exists=exists) is expected


@pytest.mark.parametrize("mode", ["local_colocated", "dataflow_colocated"])
def test_with_suspend_sets_or_drops_the_flag_of_each_workload_kind(mode: str) -> None:
    run = build_run(mode, scheduling={"queueName": "team-a"})
    plan = plan_children(run, finished=False)
    (rendered,) = [child for child in plan.rendered if child["kind"] in ("Job", "PyTorchJob")]
    path = ["spec", "suspend"] if rendered["kind"] == "Job" else ["spec", "runPolicy", "suspend"]

    def flag(manifest: dict) -> object:
        node = manifest
        for key in path[:-1]:
            node = node[key]
        return node.get(path[-1], "absent")

    assert flag(rendered) is False
    assert flag(with_suspend(rendered, SuspendOwnership.CREATE_SUSPENDED)) is True
    assert flag(with_suspend(rendered, SuspendOwnership.QUEUE)) == "absent"
    assert flag(rendered) is False, "the rendered manifest must not be modified"
    assert workload_suspended(with_suspend(rendered, SuspendOwnership.CREATE_SUSPENDED)) is True
    assert workload_suspended(rendered) is False
    assert workload_suspended(None) is False
    assert rendered["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"


def test_with_suspend_leaves_other_kinds_alone() -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    assert with_suspend(config_map, SuspendOwnership.QUEUE) is config_map
