"""The single-pod trainer workload of local_colocated runs: a batch/v1 Job of one pod, and its state."""

from __future__ import annotations

from typing import Any

from specforge_api.run import SpecForgeRun

from specforge_operator.render.job import job_manifest
from specforge_operator.render.meta import TRAINER_COMPONENT, ChildNames
from specforge_operator.render.store import MetadataStoreConnection
from specforge_operator.workloads.base import (
    ABSENT,
    WorkloadObservation,
    WorkloadState,
    trainer_pod_template,
    true_condition,
)


def observe_job(job: dict[str, Any] | None) -> WorkloadObservation:
    if job is None:
        return ABSENT
    status = job.get("status") or {}
    start, end = status.get("startTime"), status.get("completionTime")
    if condition := true_condition(job, "Failed", "FailureTarget"):
        return WorkloadObservation(
            WorkloadState.FAILED,
            condition.get("reason", "JobFailed"),
            condition.get("message", ""),
            status.get("startTime"),
            condition.get("lastTransitionTime"),
        )
    if condition := true_condition(job, "Complete", "SuccessCriteriaMet"):
        return WorkloadObservation(
            WorkloadState.SUCCEEDED,
            condition.get("reason", "JobComplete"),
            start_time=start,
            completion_time=end,
        )
    if true_condition(job, "Suspended") or (job.get("spec") or {}).get("suspend"):
        return WorkloadObservation(
            WorkloadState.SUSPENDED, "JobSuspended", start_time=start, completion_time=end
        )
    if (status.get("ready") or 0) > 0:
        return WorkloadObservation(
            WorkloadState.RUNNING, "PodsRunning", start_time=start, completion_time=end
        )
    return WorkloadObservation(WorkloadState.PENDING, "PodsPending", start_time=start, completion_time=end)


class SinglePodJobWorkload:
    """local_colocated: the trainer as a batch/v1 Job of exactly one pod."""

    api_version = "batch/v1"
    kind = "Job"
    gang_restarts = False

    def render(self, run: SpecForgeRun, store: MetadataStoreConnection | None) -> dict[str, Any]:
        names = ChildNames(run.name)
        template = trainer_pod_template(run, store, container_name="trainer")
        return job_manifest(
            run, name=names.trainer, component=TRAINER_COMPONENT, pool=run.spec.trainer, template=template
        )

    def observe(self, workload: dict[str, Any] | None) -> WorkloadObservation:
        return observe_job(workload)
