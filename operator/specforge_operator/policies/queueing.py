"""Who owns the workload's ``suspend`` field: the operator, or a queue such as Kueue.

Kueue admits a Job, PyTorchJob or JobSet labelled ``kueue.x-k8s.io/queue-name`` by flipping its ``suspend``
from true to false, so such a workload must be created suspended and the operator must then leave the
field alone (re-applying ``suspend: false`` would start it before admission; re-applying ``true`` would
undo the admission). Without a queue the operator owns the field and mirrors ``spec.suspend``.

With a queue the workload is therefore created (POST, suspended) rather than applied the first time: a
field set by a create is not removed when later server-side applies omit it, whereas a field the
operator once applied would be removed, unsuspending the workload.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from specforge_api.run import SpecForgeRun

# Where each workload kind keeps its suspend flag.
SUSPEND_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("batch/v1", "Job"): ("spec", "suspend"),
    ("kubeflow.org/v1", "PyTorchJob"): ("spec", "runPolicy", "suspend"),
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): ("spec", "suspend"),
}
WAITING_FOR_ADMISSION = "WaitingForQueueAdmission"
QUEUE_ADMITTED_CONDITION = "QueueAdmitted"
# A queue label on a cluster without Kueue: the workload would wait, suspended, for an admission that
# never comes. Discovery of Kueue's LocalQueue tells the two apart.
KUEUE_API_VERSION = "kueue.x-k8s.io/v1beta1"
KUEUE_QUEUE_KIND = "LocalQueue"
QUEUE_CONTROLLER_CONDITION = "QueueControllerAvailable"
KUEUE_NOT_INSTALLED = "KueueNotInstalled"


class SuspendOwnership(StrEnum):
    OPERATOR = "Operator"  # apply spec.suspend as rendered
    CREATE_SUSPENDED = "CreateSuspended"  # queue-managed and absent: create it suspended
    QUEUE = "Queue"  # queue-managed and present: apply without the field


def suspend_ownership(run: SpecForgeRun, *, workload_exists: bool) -> SuspendOwnership:
    if run.spec.suspend or not run.spec.scheduling.queue_name:
        return SuspendOwnership.OPERATOR
    return SuspendOwnership.QUEUE if workload_exists else SuspendOwnership.CREATE_SUSPENDED


def is_queue_managed(run: SpecForgeRun) -> bool:
    return run.spec.scheduling.queue_name is not None


def suspend_path(manifest: dict[str, Any]) -> tuple[str, ...] | None:
    return SUSPEND_PATHS.get((manifest["apiVersion"], manifest["kind"]))


def workload_suspended(workload: dict[str, Any] | None) -> bool:
    """The suspend flag of a workload object as the API server returned it (False when absent)."""
    if workload is None or (path := suspend_path(workload)) is None:
        return False
    node: Any = workload
    for key in path:
        node = (node or {}).get(key)
    return bool(node)


def with_suspend(manifest: dict[str, Any], ownership: SuspendOwnership) -> dict[str, Any]:
    """``manifest`` with its suspend flag set for ``ownership`` (a copy; non-workloads are returned as is)."""
    path = suspend_path(manifest)
    if path is None or ownership is SuspendOwnership.OPERATOR:
        return manifest
    result = {**manifest}
    parent = result
    for key in path[:-1]:
        parent[key] = {**parent[key]}
        parent = parent[key]
    if ownership is SuspendOwnership.CREATE_SUSPENDED:
        parent[path[-1]] = True
    else:
        parent.pop(path[-1], None)
    return result


def admission_message(run: SpecForgeRun) -> str:
    return (
        f"the workload is suspended until queue {run.spec.scheduling.queue_name!r} admits it "
        "(kueue.x-k8s.io/queue-name)"
    )


def kueue_missing_message(run: SpecForgeRun) -> str:
    return (
        f"spec.scheduling.queueName {run.spec.scheduling.queue_name!r} sets the kueue.x-k8s.io/queue-name "
        f"label, but this cluster does not serve Kueue ({KUEUE_API_VERSION}): install Kueue, or remove "
        "queueName; the workload stays suspended until a queue admits it"
    )


def queue_controller_availability(
    run: SpecForgeRun, *, kueue_served: bool, previously_missing: bool
) -> tuple[bool, str]:
    """(available, message) of the ``QueueControllerAvailable`` condition of a queue-managed run; the
    caller reports it once it has been False, so clusters with Kueue never see the condition."""
    if kueue_served:
        return True, "" if not previously_missing else f"Kueue ({KUEUE_API_VERSION}) is served"
    return False, kueue_missing_message(run)
