"""The stages after training (``spec.evaluation``, ``spec.export``): measure the final draft by real
speculative decoding on the held-out conversations, decide whether it qualifies, and export it.

A draft qualifies when its output is identical to greedy decoding and its real mean acceptance length
reaches ``evaluation.minAcceptanceLength``: the figure that predicts serving speed, not training's
simulated one. Only a qualified draft is exported, so a serving directory on the checkpoints volume is a
draft someone measured. The report is written beside the checkpoints (``evaluation.json``) whatever the
verdict, so a draft that falls short says by how much.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from specforge_api import SpecForgeRun

from specforge_trainer.export import ExportFormat, export_checkpoint
from specforge_trainer.speculative.evaluation import EvalReport, evaluate_run

REPORT_FILE = "evaluation.json"
EXPORTS_DIR = "exports"


@dataclass(frozen=True)
class Qualification:
    report: EvalReport
    min_acceptance_length: float
    export_path: Path | None = None
    export_format: str | None = None

    @property
    def qualified(self) -> bool:
        return self.report.identical_to_greedy and self.report.acceptance_length >= self.min_acceptance_length

    def verdict(self) -> str:
        report = self.report
        if not report.identical_to_greedy:
            return f"not lossless: output differs from greedy decoding on prompts {report.mismatched_prompts}"
        relation = ">=" if self.qualified else "<"
        return (
            f"acceptance length {report.acceptance_length:.2f} {relation} minAcceptanceLength "
            f"{self.min_acceptance_length:g} ({report.speedup:.2f}x wall-clock, {report.prompts} held-out prompts)"
        )


def qualify(run: SpecForgeRun, out_dir: Path, device: torch.device) -> Qualification | None:
    """Evaluate the newest checkpoint under ``out_dir`` and export it when it qualifies; None when the
    run asks for no evaluation."""
    evaluation = run.spec.evaluation
    if evaluation is None:
        return None
    report = evaluate_run(
        run,
        out_dir,
        prompts=evaluation.prompts,
        draft_steps=evaluation.draft_steps,
        max_new_tokens=evaluation.max_new_tokens,
        device=device,
    )
    (out_dir / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=2) + "\n")
    result = Qualification(report, evaluation.min_acceptance_length)
    if result.qualified and run.spec.export is not None:
        checkpoint = Path(report.checkpoint)
        to: ExportFormat = run.spec.export.to.value
        target = out_dir / EXPORTS_DIR / f"{checkpoint.name}-{to}"
        if not (target.is_dir() and any(target.iterdir())):  # a restarted pod may have exported it already
            export_checkpoint(checkpoint, target, to=to)
        result = Qualification(report, evaluation.min_acceptance_length, export_path=target, export_format=to)
    return result
