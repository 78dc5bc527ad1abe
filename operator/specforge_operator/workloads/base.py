"""The seam between the operator and whatever runs the trainer ranks.

A :class:`TrainerWorkload` renders the trainer workload of a run and reads its state back as a
:class:`WorkloadObservation`. Everything else (status derivation, the reconciler) sees only these two
operations, so each workload API (batch Job, PyTorchJob v1, JobSet) is one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from specforge_api.run import SpecForgeRun

from specforge_operator.render.meta import TRAINER_COMPONENT, ChildNames, labels
from specforge_operator.render.pod import pod_template, trainer_process_of
from specforge_operator.render.store import MetadataStoreConnection


class WorkloadState(StrEnum):
    ABSENT = "Absent"
    PENDING = "Pending"
    RUNNING = "Running"
    RESTARTING = "Restarting"  # the workload itself is restarting every rank (JobSet's failure policy)
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class WorkloadObservation:
    state: WorkloadState
    reason: str = ""
    message: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    # Gang restarts the workload made itself (JobSet), None when it makes none (the operator restarts it).
    restarts: int | None = None


ABSENT = WorkloadObservation(WorkloadState.ABSENT)


class TrainerWorkload(Protocol):
    api_version: str
    kind: str
    #: Whether a failed rank fails the workload and every rank restarts together (the operator's
    #: gang-restart policy); a single-pod Job restarts its one pod by itself.
    gang_restarts: bool

    def render(self, run: SpecForgeRun, store: MetadataStoreConnection | None) -> dict[str, Any]:
        """The workload object (with owner reference and labels) that runs the run's trainer ranks."""
        ...

    def observe(self, workload: dict[str, Any] | None) -> WorkloadObservation:
        """Where the workload stands, from the object as the API server returned it (None when absent)."""
        ...


def trainer_pod_template(
    run: SpecForgeRun, store: MetadataStoreConnection | None, *, container_name: str
) -> dict[str, Any]:
    """A trainer rank's pod, the same for every backend: the run's trainer process under its own
    ServiceAccount, ``restartPolicy: Never`` (a rank never restarts alone; its workload restarts them all)."""
    return pod_template(
        run,
        pool=run.spec.trainer,
        container_name=container_name,
        process=trainer_process_of(run, store),
        labels=labels(run, TRAINER_COMPONENT),
        restart_policy="Never",
        store=store,
        service_account=ChildNames(run.name).trainer,
    )


def true_condition(obj: dict[str, Any], *types: str) -> dict[str, Any] | None:
    """The first condition of one of ``types`` whose status is True, searching in the order given."""
    conditions: list[dict[str, Any]] = (obj.get("status") or {}).get("conditions") or []
    for wanted in types:
        for condition in conditions:
            if condition.get("type") == wanted and condition.get("status") == "True":
                return condition
    return None
