"""Trainer workload builders, one per workload API, chosen by the mode's workload kind and the run's backend."""

from __future__ import annotations

import os
from collections.abc import Mapping

from specforge_api.modes import DeploymentMode, WorkloadKind
from specforge_api.run import SpecForgeRun
from specforge_api.spec import TrainerBackend

from specforge_operator.workloads.base import TrainerWorkload, WorkloadObservation, WorkloadState
from specforge_operator.workloads.batch_job import SinglePodJobWorkload
from specforge_operator.workloads.jobset import JobSetWorkload
from specforge_operator.workloads.pytorchjob import PyTorchJobWorkload

# The cluster's default backend for runs that name none (the chart's `trainerBackend` value).
DEFAULT_BACKEND_ENV = "SPECFORGE_TRAINER_BACKEND"

_TRAINING_BACKENDS: dict[TrainerBackend, type[TrainerWorkload]] = {
    TrainerBackend.PYTORCHJOB: PyTorchJobWorkload,
    TrainerBackend.JOBSET: JobSetWorkload,
}


def cluster_default_backend(environ: Mapping[str, str] = os.environ) -> TrainerBackend:
    """The backend set by ``SPECFORGE_TRAINER_BACKEND`` (default pytorchjob); a bad value names the valid ones."""
    value = environ.get(DEFAULT_BACKEND_ENV, TrainerBackend.PYTORCHJOB.value)
    try:
        return TrainerBackend(value)
    except ValueError:
        valid = ", ".join(repr(backend.value) for backend in TrainerBackend)
        raise ValueError(
            f"{DEFAULT_BACKEND_ENV}={value!r} is not a trainer backend; expected one of {valid}"
        ) from None


def backend_of(run: SpecForgeRun, default: TrainerBackend) -> TrainerBackend | None:
    """The backend running the run's ranks: the one it already reported, else its spec's, else ``default``.

    Kept once reported, so changing the cluster default never swaps the workload of a run under way.
    None when the mode runs a single-pod Job (local_colocated), which has no backend to choose.
    """
    if run.spec.deployment_mode.workload_kind is not WorkloadKind.TRAINING_JOB:
        return None
    reported = run.status.trainer_backend if run.status else None
    return reported or run.spec.trainer.backend or default


def workload_for(mode: DeploymentMode, backend: TrainerBackend | None = None) -> TrainerWorkload:
    """The workload running ``mode``'s trainer ranks; a training job's API is ``backend`` (default pytorchjob)."""
    if mode.workload_kind is WorkloadKind.SINGLE_POD_JOB:
        return SinglePodJobWorkload()
    return _TRAINING_BACKENDS[backend or TrainerBackend.PYTORCHJOB]()


__all__ = [
    "DEFAULT_BACKEND_ENV",
    "TrainerWorkload",
    "WorkloadObservation",
    "WorkloadState",
    "backend_of",
    "cluster_default_backend",
    "workload_for",
]
