"""Kubeflow training-operator PyTorchJob (kubeflow.org/v1): the trainer of durable-mode runs.

One Master plus ``replicas - 1`` Workers; ``nprocPerNode`` equals the GPUs per replica (one process on
CPU-only pods). The training-operator sets each pod's node ``RANK`` and the master's address; with more
than one process per pod the container runs torchrun, which starts one rank per GPU
(:func:`specforge_api.pod_contract.trainer_process`). The container must be named ``pytorch`` for the
training-operator to inject the rendezvous environment.

Ranks never restart one by one (``restartPolicy: Never``, ``backoffLimit: 0``): a rank restarted alone
would wait forever in a collective its peers left. The first failed rank fails the whole PyTorchJob, and
the operator's gang-restart policy (``specforge_operator.policies.restart``) recreates it, counting
against ``runPolicy.backoffLimit``; deadlines and TTL are run-level policies too, so they are not copied
here (a recreated PyTorchJob would restart their clocks).
"""

from __future__ import annotations

from typing import Any

from specforge_api.pod_contract import processes_per_pod
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

CONTAINER_NAME = "pytorch"


class PyTorchJobWorkload:
    api_version = "kubeflow.org/v1"
    kind = "PyTorchJob"
    gang_restarts = True

    def render(self, run: SpecForgeRun, store: MetadataStoreConnection | None) -> dict[str, Any]:
        names = ChildNames(run.name)
        trainer = run.spec.trainer
        template = trainer_pod_template(run, store, container_name=CONTAINER_NAME)
        replica_specs: dict[str, Any] = {
            "Master": {"replicas": 1, "restartPolicy": "Never", "template": template}
        }
        if trainer.replicas > 1:
            replica_specs["Worker"] = {
                "replicas": trainer.replicas - 1,
                "restartPolicy": "Never",
                "template": template,
            }
        run_policy: dict[str, Any] = {
            "backoffLimit": 0,
            "cleanPodPolicy": "None",
            "suspend": run.spec.suspend,
        }
        scheduling = run.spec.scheduling
        if scheduling.priority_class_name or scheduling.queue_name:
            run_policy["schedulingPolicy"] = {
                key: value
                for key, value in (
                    ("priorityClass", scheduling.priority_class_name),
                    ("queue", scheduling.queue_name),
                )
                if value
            }
        extra_labels = {KUEUE_QUEUE_LABEL: scheduling.queue_name} if scheduling.queue_name else {}
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": object_meta(run, names.trainer, TRAINER_COMPONENT, **extra_labels),
            "spec": {
                "nprocPerNode": str(processes_per_pod(trainer.gpus_per_replica)),
                "runPolicy": run_policy,
                "pytorchReplicaSpecs": replica_specs,
            },
        }

    def observe(self, workload: dict[str, Any] | None) -> WorkloadObservation:
        if workload is None:
            return ABSENT
        status = workload.get("status") or {}
        start, end = status.get("startTime"), status.get("completionTime")
        # The training-operator keeps older conditions True (e.g. Running after Succeeded); check terminal first.
        if condition := true_condition(workload, "Failed"):
            return WorkloadObservation(
                WorkloadState.FAILED,
                condition.get("reason", "PyTorchJobFailed"),
                condition.get("message", ""),
                status.get("startTime"),
                status.get("completionTime") or condition.get("lastTransitionTime"),
            )
        if condition := true_condition(workload, "Succeeded"):
            return WorkloadObservation(
                WorkloadState.SUCCEEDED,
                condition.get("reason", "PyTorchJobSucceeded"),
                start_time=start,
                completion_time=end,
            )
        if true_condition(workload, "Suspended"):
            return WorkloadObservation(
                WorkloadState.SUSPENDED, "PyTorchJobSuspended", start_time=start, completion_time=end
            )
        if true_condition(workload, "Running"):
            return WorkloadObservation(
                WorkloadState.RUNNING, "PodsRunning", start_time=start, completion_time=end
            )
        return WorkloadObservation(
            WorkloadState.PENDING, "PodsPending", start_time=start, completion_time=end
        )
