"""batch/v1 Job manifests: the single-pod trainer of local_colocated runs and the indexed producer Job.

A Job (rather than bare pods) gives restarts with backoff, a deadline, TTL cleanup and a native ``suspend``.
"""

from __future__ import annotations

from typing import Any

from specforge_api.run import SpecForgeRun
from specforge_api.spec import WorkerPool

from specforge_operator.render.meta import KUEUE_QUEUE_LABEL, object_meta


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
