"""Deployment modes and what each one means, in one place for the operator and the trainer.

Standard library only: the trainer's control plane imports it without pydantic or torch. Every
question a mode answers (durable store? producer pods? which workload runs the trainers?) is a
property here, so adding a mode is one edit in this file and one branch in each consumer's table.
"""

from __future__ import annotations

from enum import StrEnum


class WorkloadKind(StrEnum):
    """What runs a mode's trainer ranks on a cluster."""

    SINGLE_POD_JOB = "SinglePodJob"  # batch/v1 Job of one pod
    TRAINING_JOB = "TrainingJob"  # a distributed-training workload (PyTorchJob today)


class DeploymentMode(StrEnum):
    """How features reach the trainer, and which metadata store keeps their refs."""

    LOCAL_COLOCATED = "local_colocated"
    DATAFLOW_COLOCATED = "dataflow_colocated"
    DISAGGREGATED = "disaggregated"

    @classmethod
    def parse(cls, value: DeploymentMode | str) -> DeploymentMode:
        """The mode named by ``value``; an unknown name is a ``ValueError`` listing the valid ones."""
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"unknown deployment mode {value!r}; expected one of {valid}") from None

    @property
    def durable(self) -> bool:
        """Whether this mode keeps a durable store and acks at the optimizer boundary."""
        return self is not DeploymentMode.LOCAL_COLOCATED

    @property
    def uses_producers(self) -> bool:
        """Whether separate producer processes compute the features (else the trainers do)."""
        return self is DeploymentMode.DISAGGREGATED

    @property
    def workload_kind(self) -> WorkloadKind:
        return WorkloadKind.TRAINING_JOB if self.durable else WorkloadKind.SINGLE_POD_JOB
