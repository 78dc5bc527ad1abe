"""When the operator counts a managed Redis as ready: the trainer and producers are held back until then."""

from __future__ import annotations

import pytest
from specforge_operator.render.store import store_is_ready

CASES = {
    "not created yet": (None, False),
    "created, no status yet": ({"metadata": {"name": "r"}}, False),
    "status without ready replicas": ({"status": {"replicas": 1}}, False),
    "status null": ({"status": None}, False),
    "no replica ready": ({"status": {"readyReplicas": 0}}, False),
    "one replica ready": ({"status": {"readyReplicas": 1}}, True),
    "more than one ready": ({"status": {"readyReplicas": 2}}, True),
}


@pytest.mark.parametrize(("deployment", "ready"), CASES.values(), ids=CASES.keys())
def test_a_managed_store_is_ready_once_a_replica_is(deployment: dict | None, ready: bool) -> None:
    assert store_is_ready(deployment) is ready
