"""Trainer workload builders, one per workload API, chosen by deployment mode."""

from __future__ import annotations

from specforge_api.spec import DeploymentMode

from specforge_operator.workloads.base import TrainerWorkload, WorkloadObservation, WorkloadState
from specforge_operator.workloads.batch_job import SinglePodJobWorkload
from specforge_operator.workloads.pytorchjob import PyTorchJobWorkload


def workload_for(mode: DeploymentMode) -> TrainerWorkload:
    if mode is DeploymentMode.LOCAL_COLOCATED:
        return SinglePodJobWorkload()
    return PyTorchJobWorkload()


__all__ = ["TrainerWorkload", "WorkloadObservation", "WorkloadState", "workload_for"]
