"""JobSet (jobset.x-k8s.io/v1alpha2): the trainer of durable-mode runs on clusters without training-operator.

One ReplicatedJob (``node``) of one Indexed Job with a pod per trainer replica. JobSet gives what the
PyTorchJob path gets from the training-operator or from our own policies:

- rendezvous: ``network.enableDNSHostnames`` makes JobSet create a headless Service named by
  ``network.subdomain``; pod ``i`` is reachable as ``<jobset>-node-0-<i>.<subdomain>``, so rank 0's name is
  ``MASTER_ADDR``. The rest of what a training workload injects (:func:`workload_env`) is rendered here:
  ``RANK`` is the pod's completion index (read from its annotation), ``WORLD_SIZE`` and ``MASTER_PORT``
  are literals. The argv is the one :func:`trainer_process` gives a PyTorchJob pod (torchrun takes the
  pod's ``RANK`` as its node rank when a pod has several GPUs).
- gang restarts: ranks never restart alone (``backoffLimit: 0``, ``restartPolicy: Never``); the first failed
  rank fails the Job, and JobSet's failure policy recreates every Job, at most ``runPolicy.backoffLimit``
  times. ``BlockingRecreate`` starts no new rank until every pod of the failed attempt is gone. JobSet
  counts the restarts itself (``status.restarts``), so the operator's own gang-restart policy stays out.
- suspend: ``spec.suspend`` is our ``spec.suspend``, and the field Kueue flips to admit a JobSet carrying
  ``kueue.x-k8s.io/queue-name``.

Producers of ``disaggregated`` runs stay the indexed batch Job they are with PyTorchJob: a producer that
fails must not restart the trainers (the durable store already lets each side restart alone), and a
JobSet's failure policy acts on the whole set.
"""

from __future__ import annotations

from typing import Any

from specforge_api.pod_contract import Env, workload_env
from specforge_api.run import SpecForgeRun

from specforge_operator.render.meta import KUEUE_QUEUE_LABEL, TRAINER_COMPONENT, ChildNames, object_meta
from specforge_operator.render.store import MetadataStoreConnection
from specforge_operator.workloads.base import (
    ABSENT,
    WorkloadObservation,
    WorkloadState,
    trainer_pod_template,
    true_condition,
)

CONTAINER_NAME = "trainer"
REPLICATED_JOB = "node"
MASTER_PORT = 29500  # torch.distributed's default port
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
# JobSet's reason for a set that failed with its restarts spent, and the reason the operator's own
# gang-restart policy gives the same outcome on the PyTorchJob backend.
REACHED_MAX_RESTARTS = "ReachedMaxRestarts"
BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"


def master_address(jobset_name: str) -> str:
    """Rank 0's DNS name: pod 0 of Job 0 of the ReplicatedJob, under the JobSet's headless Service."""
    return f"{jobset_name}-{REPLICATED_JOB}-0-0.{jobset_name}"


def rendezvous_env(run: SpecForgeRun, jobset_name: str) -> list[dict[str, Any]]:
    """What the training-operator would inject into a trainer pod, with ``RANK`` from the completion index."""
    trainer = run.spec.trainer
    literal = workload_env(
        pod_index=0,  # RANK differs per pod, so it is read from the pod below, not taken from here
        replicas=trainer.replicas,
        gpus_per_replica=trainer.gpus_per_replica,
        master_addr=master_address(jobset_name),
        master_port=MASTER_PORT,
    )
    env = [{"name": name, "value": value} for name, value in literal.items() if name != Env.RANK]
    rank_source = {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}
    return [{"name": Env.RANK, "valueFrom": rank_source}, *env]


class JobSetWorkload:
    api_version = "jobset.x-k8s.io/v1alpha2"
    kind = "JobSet"
    # JobSet restarts every rank itself (failurePolicy); the operator only reports it.
    gang_restarts = False

    def render(self, run: SpecForgeRun, store: MetadataStoreConnection | None) -> dict[str, Any]:
        name = ChildNames(run.name).trainer
        trainer = run.spec.trainer
        template = trainer_pod_template(run, store, container_name=CONTAINER_NAME)
        template["spec"]["containers"][0]["env"].extend(rendezvous_env(run, name))
        queue = run.spec.scheduling.queue_name
        extra_labels = {KUEUE_QUEUE_LABEL: queue} if queue else {}
        job = {
            "parallelism": trainer.replicas,
            "completions": trainer.replicas,
            "completionMode": "Indexed",
            "backoffLimit": 0,
            "template": template,
        }
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": object_meta(run, name, TRAINER_COMPONENT, **extra_labels),
            "spec": {
                "suspend": run.spec.suspend,
                "network": {"enableDNSHostnames": True, "subdomain": name, "publishNotReadyAddresses": True},
                "failurePolicy": {
                    "maxRestarts": run.spec.run_policy.backoff_limit,
                    "restartStrategy": "BlockingRecreate",
                },
                "successPolicy": {"operator": "All"},
                "replicatedJobs": [
                    {"name": REPLICATED_JOB, "replicas": 1, "template": {"spec": job}},
                ],
            },
        }

    def observe(self, workload: dict[str, Any] | None) -> WorkloadObservation:
        if workload is None:
            return ABSENT
        status = workload.get("status") or {}
        restarts = int(status.get("restarts") or 0)
        if condition := true_condition(workload, "Failed"):
            return _failed(workload, condition, restarts)
        if condition := true_condition(workload, "Completed"):
            return WorkloadObservation(
                WorkloadState.SUCCEEDED,
                condition.get("reason", "JobSetCompleted"),
                completion_time=condition.get("lastTransitionTime"),
                restarts=restarts,
            )
        if true_condition(workload, "Suspended") or (workload.get("spec") or {}).get("suspend"):
            return WorkloadObservation(WorkloadState.SUSPENDED, "JobSetSuspended", restarts=restarts)
        if true_condition(workload, "RestartingJobSet"):
            return WorkloadObservation(
                WorkloadState.RESTARTING,
                "RestartingAllRanks",
                f"restart {restarts} of at most {_max_restarts(workload)}: a rank failed, JobSet is "
                "recreating every rank from the newest checkpoint",
                restarts=restarts,
            )
        if _all_jobs_ready(workload):
            return WorkloadObservation(WorkloadState.RUNNING, "PodsRunning", restarts=restarts)
        return WorkloadObservation(WorkloadState.PENDING, "PodsPending", restarts=restarts)


def _max_restarts(workload: dict[str, Any]) -> int:
    return int(((workload.get("spec") or {}).get("failurePolicy") or {}).get("maxRestarts") or 0)


def _all_jobs_ready(workload: dict[str, Any]) -> bool:
    """Every Job of every ReplicatedJob has all its pods ready (JobSet's per-ReplicatedJob ``ready``)."""
    wanted = {
        rj["name"]: rj.get("replicas", 1) for rj in (workload.get("spec") or {}).get("replicatedJobs", [])
    }
    ready = {
        rj.get("name"): (rj.get("ready") or 0)
        for rj in (workload.get("status") or {}).get("replicatedJobsStatus") or []
    }
    return bool(wanted) and all(ready.get(name, 0) >= count for name, count in wanted.items())


def _failed(workload: dict[str, Any], condition: dict[str, Any], restarts: int) -> WorkloadObservation:
    reason = condition.get("reason", "JobSetFailed")
    message = condition.get("message", "")
    if reason == REACHED_MAX_RESTARTS:
        reason = BACKOFF_LIMIT_EXCEEDED
        message = (
            f"a rank failed after {restarts} restarts (runPolicy.backoffLimit {_max_restarts(workload)}): "
            f"{message}"
        ).rstrip(": ")
    return WorkloadObservation(
        WorkloadState.FAILED,
        reason,
        message,
        completion_time=condition.get("lastTransitionTime"),
        restarts=restarts,
    )
