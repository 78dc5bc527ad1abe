"""Trainer workload builders, one per workload API, chosen by the mode's workload kind."""

from __future__ import annotations

from specforge_api.modes import DeploymentMode, WorkloadKind

from specforge_operator.workloads.base import TrainerWorkload, WorkloadObservation, WorkloadState
from specforge_operator.workloads.batch_job import SinglePodJobWorkload
from specforge_operator.workloads.pytorchjob import PyTorchJobWorkload

_BACKENDS: dict[WorkloadKind, type[TrainerWorkload]] = {
    WorkloadKind.SINGLE_POD_JOB: SinglePodJobWorkload,
    WorkloadKind.TRAINING_JOB: PyTorchJobWorkload,
}


def workload_for(mode: DeploymentMode) -> TrainerWorkload:
    return _BACKENDS[mode.workload_kind]()


__all__ = ["TrainerWorkload", "WorkloadObservation", "WorkloadState", "workload_for"]
