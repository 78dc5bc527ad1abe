"""batch/v1 Jobs: the single-pod trainer of local_colocated runs and the indexed producer Job.

A Job of one pod (rather than a bare pod) gives restarts with backoff, a deadline, TTL cleanup and a
native ``suspend``.
"""

from __future__ import annotations

from typing import Any

from specforge_api.run import SpecForgeRun
from specforge_api.spec import WorkerPool

from specforge_operator.render.meta import KUEUE_QUEUE_LABEL, ChildNames, labels, object_meta
from specforge_operator.render.pod import pod_template, trainer_process_of
from specforge_operator.render.store import MetadataStoreConnection
from specforge_operator.workloads.base import ABSENT, WorkloadObservation, WorkloadState, true_condition

TRAINER_COMPONENT = "trainer"


def job_manifest(
    run: SpecForgeRun,
    *,
    name: str,
    component: str,
    pool: WorkerPool,
    template: dict[str, Any],
    indexed: bool = False,
) -> dict[str, Any]:
    """A Job running ``pool.replicas`` pods of ``template``; indexed pods see ``JOB_COMPLETION_INDEX``."""
    policy = run.spec.run_policy
    extra_labels = (
        {KUEUE_QUEUE_LABEL: run.spec.scheduling.queue_name} if run.spec.scheduling.queue_name else {}
    )
    spec: dict[str, Any] = {
        "completions": pool.replicas,
        "parallelism": pool.replicas,
        "completionMode": "Indexed" if indexed else "NonIndexed",
        "backoffLimit": policy.backoff_limit,
        "suspend": run.spec.suspend,
        "template": template,
    }
    if policy.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = policy.ttl_seconds_after_finished
    if policy.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = policy.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": object_meta(run, name, component, **extra_labels),
        "spec": spec,
    }


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

    def render(self, run: SpecForgeRun, store: MetadataStoreConnection | None) -> dict[str, Any]:
        names = ChildNames(run.name)
        template = pod_template(
            run,
            pool=run.spec.trainer,
            container_name="trainer",
            process=trainer_process_of(run, store),
            labels=labels(run, TRAINER_COMPONENT),
            restart_policy="Never",
            store=store,
            service_account=names.trainer,
        )
        return job_manifest(
            run, name=names.trainer, component=TRAINER_COMPONENT, pool=run.spec.trainer, template=template
        )

    def observe(self, workload: dict[str, Any] | None) -> WorkloadObservation:
        return observe_job(workload)
