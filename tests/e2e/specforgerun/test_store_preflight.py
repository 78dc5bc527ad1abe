"""A managed Redis that cannot start says why in the run's status, as trainer pods do: the scheduler's
reason on ``Schedulable``, and the claim it waits for when that claim cannot bind. A new user's first
run on a cluster without the StorageClass it names sat in Provisioning with no more than "waiting for
the managed Redis"."""

from __future__ import annotations

import pytest
from _support.manifests import minimal_run
from _support.operator_process import OperatorProcess
from e2e.specforgerun.conftest import Runs, condition, wait_for

pytestmark = pytest.mark.slow


def _schedulable_false(runs: Runs, name: str) -> dict:
    def reported() -> dict | None:
        found = condition(runs.get(name), "Schedulable")
        return found if found and found["status"] == "False" else None

    return wait_for(reported, f"Schedulable=False on {name}", timeout=90)


def test_a_store_claim_that_cannot_bind_is_named_in_the_status(
    runs: Runs, operator_process: OperatorProcess
) -> None:
    persistence = {"enabled": True, "size": "64Mi", "storageClassName": "no-such-class"}
    runs.create(
        minimal_run(
            "unbound",
            deploymentMode="dataflow_colocated",
            metadataStore={"managed": {"persistence": persistence}},
        )
    )
    reported = _schedulable_false(runs, "unbound")
    assert reported["reason"] == "UnboundPersistentVolumeClaims", reported
    assert (
        "pod unbound-redis-" in reported["message"]
        and "unbound immediate PersistentVolumeClaims" in reported["message"]
    )
    assert "unbound-redis-data (StorageClass no-such-class)" in reported["message"], reported
    run = runs.get("unbound")
    assert run["status"]["phase"] == "Provisioning"
    runs.warning_reasons("unbound", "UnboundPersistentVolumeClaims")  # one Warning event, waited for


def test_a_store_pod_no_node_accepts_reports_the_schedulers_reason(
    runs: Runs, operator_process: OperatorProcess
) -> None:
    runs.create(
        minimal_run(
            "nowhere",
            deploymentMode="dataflow_colocated",
            metadataStore={"managed": {"nodeSelector": {"example.com/pool": "absent"}}},
        )
    )
    reported = _schedulable_false(runs, "nowhere")
    assert reported["reason"] == "Unschedulable", reported
    assert (
        "pod nowhere-redis-" in reported["message"]
        and "didn't match Pod's node affinity/selector" in reported["message"]
    )
    assert runs.get("nowhere")["status"]["phase"] == "Provisioning"
