"""The observed state of a SpecForgeRun.

Two writers share the status subresource and never touch each other's fields: the operator owns everything
but ``progress``, which rank 0 of the trainer merge-patches as it trains (through a per-run ServiceAccount
that may patch only this run's status). Status models ignore unknown fields so an older operator can read a
status written by a newer trainer.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field

from specforge_api.base import ApiModel
from specforge_api.spec import TrainerBackend


class Phase(StrEnum):
    """Coarse lifecycle state of a run, derived from its children."""

    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def is_finished(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED)


class StatusModel(ApiModel):
    model_config = ConfigDict(extra="ignore")


class Condition(StatusModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(max_length=316, description="Condition type, e.g. Ready, StoreReady, Complete, Failed.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(max_length=1024, description="CamelCase machine-readable reason.")
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: int | None = Field(default=None, ge=0, description="Spec generation this reflects.")


class ChildReference(StatusModel):
    """One object the run owns."""

    api_version: str = Field(description="apiVersion of the child.")
    kind: str = Field(description="Kind of the child.")
    name: str = Field(description="Name of the child.")


class Progress(StatusModel):
    """Progress as last reported by trainer rank 0: the stage it is in, and training's figures."""

    stage: Literal["Regenerating", "Training", "Evaluating", "Evaluated"] | None = Field(
        default=None,
        description="Regenerating (the target answers the dataset), Training, Evaluating (real speculative "
        "decoding of the held-out conversations) or Evaluated.",
    )
    stage_done: int | None = Field(default=None, ge=0, description="Units the current stage has finished.")
    stage_total: int | None = Field(default=None, ge=0, description="Units the current stage will do.")
    step: int | None = Field(default=None, ge=0, description="Optimizer steps done.")
    total_steps: int | None = Field(default=None, ge=0, description="Optimizer steps the run will take.")
    epoch: int | None = Field(default=None, ge=0, description="Current epoch (0-based).")
    loss: float | None = Field(default=None, description="Latest training loss.")
    accuracy: list[float] = Field(
        default_factory=list,
        max_length=64,
        description="Latest per-position draft accuracy (position 0 first).",
    )
    acceptance_length: float | None = Field(default=None, description="Estimated mean acceptance length.")
    samples_per_second: float | None = Field(default=None, ge=0, description="Recent training throughput.")
    updated_at: datetime | None = Field(default=None, description="When the trainer wrote this progress.")


class Evaluation(StatusModel):
    """The trained draft measured by real speculative decoding on held-out conversations (rank 0)."""

    checkpoint: str = Field(description="The checkpoint measured.")
    prompts: int = Field(ge=0, description="Held-out conversations decoded.")
    draft_steps: int = Field(ge=1, description="Draft tokens proposed per target forward.")
    acceptance_length: float = Field(
        ge=0, description="Mean accepted draft tokens per target forward (real)."
    )
    simulated_acceptance_length: float | None = Field(
        default=None, description="Training's estimate for the same checkpoint, beside the real figure."
    )
    tokens_per_target_forward: float = Field(ge=0, description="Generated tokens per target forward.")
    position_acceptance: list[float] = Field(
        default_factory=list, max_length=64, description="P(draft i accepted | the ones before were), i=1..k."
    )
    speedup: float = Field(ge=0, description="Wall-clock speed-up over plain greedy decoding.")
    lossless: bool = Field(description="Whether the output was identical to greedy decoding.")
    checkpoints_compared: int | None = Field(
        default=None,
        ge=1,
        description="Checkpoints measured so far (evaluation.intervalSteps); the one reported is the best.",
    )
    updated_at: datetime | None = Field(default=None, description="When it was measured.")


class ExportStatus(StatusModel):
    """Where the qualified draft was exported."""

    path: str = Field(description="The serving directory (on the checkpoints volume).")
    format: str = Field(description="sglang or hf.")
    checkpoint: str = Field(description="The checkpoint exported.")


class SpecForgeRunStatus(StatusModel):
    """Observed state of a SpecForgeRun."""

    phase: Phase | None = Field(
        default=None,
        description="Pending, Provisioning, Running, Restarting, Suspended, Succeeded or Failed.",
    )
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16, description="Standard conditions."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="Last spec generation reconciled."
    )
    start_time: datetime | None = Field(default=None, description="When the workload was first created.")
    completion_time: datetime | None = Field(default=None, description="When the run Succeeded or Failed.")
    children: list[ChildReference] = Field(
        default_factory=list, max_length=64, description="Objects the run owns."
    )
    metadata_store_endpoint: str | None = Field(
        default=None, description="redis://host:port/db the trainers use (no password)."
    )
    gpus: int | None = Field(default=None, ge=0, description="GPUs the run requests in total.")
    restarts: int | None = Field(
        default=None, ge=0, description="Times every rank was restarted together after a rank failed."
    )
    last_failed_workload_uid: str | None = Field(
        default=None, description="uid of the last failed trainer workload counted in restarts."
    )
    running_time: datetime | None = Field(
        default=None, description="When the current trainer workload's pods were first all running."
    )
    resume_time: datetime | None = Field(
        default=None,
        description="When the run last left suspension (spec.suspend, or a queue holding its workload); "
        "the deadlines count from it, as a batch Job's do after it is resumed.",
    )
    trainer_backend: TrainerBackend | None = Field(
        default=None,
        description="The workload API running the trainer ranks (spec.trainer.backend, else the operator's "
        "default when the run first reconciled); kept for the run's life.",
    )
    progress: Progress | None = Field(default=None, description="Training progress written by the trainer.")
    evaluation: Evaluation | None = Field(
        default=None, description="Real speculative decoding of the final draft, written by the trainer."
    )
    export: ExportStatus | None = Field(
        default=None, description="The exported serving directory, written by the trainer once qualified."
    )
