"""The ``DraftQualified`` condition: the trainer's real speculative-decoding figures (``status.evaluation``)
against ``spec.evaluation.minAcceptanceLength``. Pure: spec and status in, a condition out."""

from __future__ import annotations

from pathlib import PurePosixPath

from specforge_api.run import SpecForgeRun

from specforge_operator.status.conditions import ConditionUpdate

CONDITION = "DraftQualified"


def draft_qualified(run: SpecForgeRun, *, finished: bool) -> ConditionUpdate | None:
    """None while there is nothing to say (no evaluation asked for, or not measured yet and still running)."""
    wanted = run.spec.evaluation
    if wanted is None:
        return None
    measured = run.status.evaluation if run.status else None
    if measured is None:
        if not finished:
            return None
        return ConditionUpdate(
            CONDITION, False, "NotEvaluated", "the trainer finished without reporting status.evaluation"
        )
    figures = (
        f"real acceptance length {measured.acceptance_length:.2f} at {measured.draft_steps} draft steps "
        f"(simulated {_optional(measured.simulated_acceptance_length)}), {measured.speedup:.2f}x wall-clock, "
        f"{measured.prompts} held-out prompts, checkpoint {PurePosixPath(measured.checkpoint).name}"
        f"{_best_of(measured.checkpoints_compared)}; minAcceptanceLength {wanted.min_acceptance_length:g}"
    )
    if not measured.lossless:
        return ConditionUpdate(
            CONDITION, False, "NotLossless", f"speculative output differed from greedy decoding; {figures}"
        )
    if measured.acceptance_length < wanted.min_acceptance_length:
        return ConditionUpdate(CONDITION, False, "BelowMinAcceptanceLength", figures)
    return ConditionUpdate(CONDITION, True, "Qualified", figures)


def _best_of(compared: int | None) -> str:
    return f" (best of {compared} measured)" if compared and compared > 1 else ""


def _optional(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"
