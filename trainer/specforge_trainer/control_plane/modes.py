"""Deployment modes: the one switch that decides which control plane a run pays for."""

from __future__ import annotations

from enum import StrEnum


class DeploymentMode(StrEnum):
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
