"""Terminal output: a progress bar (steps, loss, accuracy, samples/s) and a summary table at the end.

On a non-interactive stream (a pod's log) the bar is replaced by one log line every ``log_every``
steps, which reads better in ``kubectl logs``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from specforge_trainer.train.trainer import StepReport


class TerminalProgress:
    def __init__(self, total_steps: int, *, log_every: int = 10, console: Console | None = None) -> None:
        self.console = console or Console(file=sys.stderr)
        self.total_steps = total_steps
        self.log_every = log_every
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def on_start(self, restored: Sequence[StepReport]) -> None:
        if restored:
            self.console.print(f"resumed at step {restored[-1].step} of {self.total_steps}")
        if self.console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"),
                console=self.console,
            )
            self._task = self._progress.add_task(
                "train", total=self.total_steps, completed=len(restored), stats=""
            )
            self._progress.start()

    def on_step(self, report: StepReport) -> None:
        stats = (
            f"epoch {report.epoch} loss {report.loss:.3f} acc0 {report.accuracy[0]:.3f} "
            f"accept {report.acceptance_length:.2f} {report.samples_per_s:.1f} samples/s"
        )
        if self._progress is not None:
            self._progress.update(self._task, completed=report.step, stats=stats)  # type: ignore[arg-type]
        elif report.step % self.log_every == 0 or report.step == report.total_steps:
            self.console.print(f"step {report.step}/{report.total_steps} {stats}")

    def on_end(self, reports: Sequence[StepReport]) -> None:
        if self._progress is not None:
            self._progress.stop()
        if reports:
            self.console.print(summary_table(reports))


def summary_table(reports: Sequence[StepReport]) -> Table:
    """First versus last step (each averaged over up to 10 steps, so one noisy batch does not mislead)."""
    window = max(1, min(10, len(reports) // 2))
    head, tail = reports[:window], reports[-window:]

    def mean(values: Sequence[float]) -> float:
        return sum(values) / len(values)

    table = Table(title=f"draft training summary ({len(reports)} steps; means over {window} steps)")
    table.add_column("metric")
    table.add_column("start", justify="right")
    table.add_column("end", justify="right")
    table.add_row("loss", f"{mean([r.loss for r in head]):.4f}", f"{mean([r.loss for r in tail]):.4f}")
    for position in range(len(reports[0].accuracy)):
        table.add_row(
            f"acc_{position}",
            f"{mean([r.accuracy[position] for r in head]):.3f}",
            f"{mean([r.accuracy[position] for r in tail]):.3f}",
        )
    table.add_row(
        "acceptance length",
        f"{mean([r.acceptance_length for r in head]):.3f}",
        f"{mean([r.acceptance_length for r in tail]):.3f}",
    )
    table.add_row(
        "samples/s",
        f"{mean([r.samples_per_s for r in head]):.1f}",
        f"{mean([r.samples_per_s for r in tail]):.1f}",
    )
    return table
