"""Reading Job and PyTorchJob status back into workload states."""

from __future__ import annotations

import pytest
from specforge_operator.workloads.base import WorkloadState
from specforge_operator.workloads.batch_job import SinglePodJobWorkload
from specforge_operator.workloads.pytorchjob import PyTorchJobWorkload


def obj(*conditions: tuple[str, str], suspend: bool = False, **status: object) -> dict:
    return {
        "spec": {"suspend": suspend},
        "status": {
            "conditions": [
                {"type": t, "status": s, "reason": f"{t}Reason", "message": f"{t} msg"} for t, s in conditions
            ],
            **status,
        },
    }


JOB_TABLE = [
    (None, WorkloadState.ABSENT),
    (obj(), WorkloadState.PENDING),
    (obj(ready=0, active=1), WorkloadState.PENDING),
    (obj(ready=1, active=1), WorkloadState.RUNNING),
    (obj(("SuccessCriteriaMet", "True"), ("Complete", "True")), WorkloadState.SUCCEEDED),
    (obj(("FailureTarget", "True"), ("Failed", "True")), WorkloadState.FAILED),
    (obj(("Failed", "False"), ready=1), WorkloadState.RUNNING),
    (obj(("Suspended", "True")), WorkloadState.SUSPENDED),
    (obj(suspend=True), WorkloadState.SUSPENDED),
]


@pytest.mark.parametrize(("job", "state"), JOB_TABLE)
def test_job_states(job: dict | None, state: WorkloadState) -> None:
    assert SinglePodJobWorkload().observe(job).state is state


PYTORCHJOB_TABLE = [
    (None, WorkloadState.ABSENT),
    (obj(("Created", "True")), WorkloadState.PENDING),
    (obj(("Created", "True"), ("Running", "True")), WorkloadState.RUNNING),
    (obj(("Running", "True"), ("Succeeded", "True")), WorkloadState.SUCCEEDED),
    (obj(("Running", "True"), ("Failed", "True")), WorkloadState.FAILED),
    (obj(("Suspended", "True")), WorkloadState.SUSPENDED),
]


@pytest.mark.parametrize(("job", "state"), PYTORCHJOB_TABLE)
def test_pytorchjob_states(job: dict | None, state: WorkloadState) -> None:
    assert PyTorchJobWorkload().observe(job).state is state


def test_failure_keeps_reason_and_message() -> None:
    seen = PyTorchJobWorkload().observe(obj(("Failed", "True")))
    assert (seen.reason, seen.message) == ("FailedReason", "Failed msg")
