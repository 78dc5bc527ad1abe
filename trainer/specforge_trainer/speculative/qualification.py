"""The stages after training (``spec.evaluation``, ``spec.export``): measure the draft by real
speculative decoding on the held-out conversations, decide whether it qualifies, and export it.

A draft qualifies when its output is identical to greedy decoding and its real mean acceptance length
reaches ``evaluation.minAcceptanceLength``: the figure that predicts serving speed, not training's
simulated one. Only a qualified draft is exported, so a serving directory on the checkpoints volume is a
draft someone measured. The report is written beside the checkpoints (``evaluation.json``) whatever the
verdict, so a draft that falls short says by how much.

With ``evaluation.intervalSteps`` the run also measures checkpoints while it trains. Every measurement
goes into a ledger beside the checkpoints (``evaluations.jsonl``, which survives a pod restart); the
best lossless one is kept out of checkpoint retention, and it (not simply the last) is reported and
exported: past a point more epochs on little data make a draft that memorises, and real held-out
acceptance is what says where that point is.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from specforge_api import SpecForgeRun

from specforge_trainer.export import ExportFormat, export_checkpoint
from specforge_trainer.speculative.evaluation import EvalReport, evaluate_run, resolve_checkpoint
from specforge_trainer.train.checkpoint import checkpoint_step

REPORT_FILE = "evaluation.json"
LEDGER_FILE = "evaluations.jsonl"
EXPORTS_DIR = "exports"


@dataclass(frozen=True)
class Qualification:
    report: EvalReport
    min_acceptance_length: float
    checkpoints_compared: int = 1
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
        chosen = f", best of {self.checkpoints_compared} checkpoints" if self.checkpoints_compared > 1 else ""
        return (
            f"acceptance length {report.acceptance_length:.2f} {relation} minAcceptanceLength "
            f"{self.min_acceptance_length:g} ({report.speedup:.2f}x wall-clock, {report.prompts} held-out "
            f"prompts{chosen})"
        )


def _rank(report: EvalReport) -> tuple[bool, float, int]:
    """Lossless first, then real acceptance; a tie goes to the later checkpoint."""
    return report.identical_to_greedy, report.acceptance_length, checkpoint_step(Path(report.checkpoint)) or 0


class EvaluationLedger:
    """Every checkpoint measured in this run, one JSON report per line (the last line for a checkpoint
    wins: a restarted pod may measure one again)."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / LEDGER_FILE

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def reports(self) -> dict[str, EvalReport]:
        """Every checkpoint measured, by path (retention may have deleted it since)."""
        if not self.path.is_file():
            return {}
        found: dict[str, EvalReport] = {}
        for line in self.path.read_text().splitlines():
            if line.strip():
                report = EvalReport.from_json(json.loads(line))
                found[report.checkpoint] = report
        return found

    def record(self, report: EvalReport) -> None:
        with self.path.open("a") as ledger:
            ledger.write(json.dumps(report.to_json()) + "\n")

    def best(self) -> EvalReport | None:
        """The best measured checkpoint still on disk."""
        candidates = [report for report in self.reports().values() if Path(report.checkpoint).is_dir()]
        return max(candidates, key=_rank) if candidates else None


def measure_checkpoint(run: SpecForgeRun, folder: Path, device: torch.device) -> EvalReport:
    """``spec.evaluation`` on one checkpoint. Training's RNG streams are left as they were, so a run
    measured along the way trains bit-identically to one that is not."""
    evaluation = run.spec.evaluation
    assert evaluation is not None
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return evaluate_run(
            run,
            folder,
            prompts=evaluation.prompts,
            draft_steps=evaluation.draft_steps,
            max_new_tokens=evaluation.max_new_tokens,
            device=device,
        )


@dataclass
class IntervalEvaluation:
    """A checkpoint watcher: measures every ``evaluation.intervalSteps`` and pins the best checkpoint."""

    run: SpecForgeRun
    out_dir: Path
    device: torch.device
    publish: Callable[[Qualification], None] | None = None

    def __post_init__(self) -> None:
        assert self.run.spec.evaluation is not None and self.run.spec.evaluation.interval_steps
        self.interval = self.run.spec.evaluation.interval_steps
        self.ledger = EvaluationLedger(self.out_dir)

    def pinned(self) -> set[str]:
        best = self.ledger.best()
        return {Path(best.checkpoint).name} if best is not None else set()

    def on_checkpoint(self, folder: Path, step: int) -> None:
        if step % self.interval:
            return
        report = measure_checkpoint(self.run, folder, self.device)
        self.ledger.record(report)
        print(
            f"evaluation at step {step}: acceptance length {report.acceptance_length:.2f} "
            f"({report.speedup:.2f}x, lossless {report.identical_to_greedy})",
            file=sys.stderr,
        )
        if self.publish is not None:
            self.publish(_best_so_far(self.run, self.ledger))


def _best_so_far(run: SpecForgeRun, ledger: EvaluationLedger) -> Qualification:
    assert run.spec.evaluation is not None
    best = ledger.best()
    assert best is not None
    return Qualification(best, run.spec.evaluation.min_acceptance_length, len(ledger.reports()))


def qualify(run: SpecForgeRun, out_dir: Path, device: torch.device) -> Qualification | None:
    """Measure the newest checkpoint under ``out_dir`` (unless an interval already did), choose the best
    measured one and export it when it qualifies; None when the run asks for no evaluation."""
    if run.spec.evaluation is None:
        return None
    ledger = EvaluationLedger(out_dir)
    newest = resolve_checkpoint(out_dir)
    if str(newest) not in ledger.reports():
        ledger.record(measure_checkpoint(run, newest, device))
    result = _best_so_far(run, ledger)
    report = result.report
    (out_dir / REPORT_FILE).write_text(
        json.dumps({**report.to_json(), "checkpoints_compared": result.checkpoints_compared}, indent=2) + "\n"
    )
    if not result.qualified or run.spec.export is None:
        return result
    checkpoint = Path(report.checkpoint)
    to: ExportFormat = run.spec.export.to.value
    target = out_dir / EXPORTS_DIR / f"{checkpoint.name}-{to}"
    if not (target.is_dir() and any(target.iterdir())):  # a restarted pod may have exported it already
        export_checkpoint(checkpoint, target, to=to)
    return Qualification(
        report,
        result.min_acceptance_length,
        result.checkpoints_compared,
        export_path=target,
        export_format=to,
    )
