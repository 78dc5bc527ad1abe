"""``metrics.jsonl`` (one JSON object per optimizer step) and, at the end, ``loss.png``.

On resume the file is rewritten from the reports the checkpoint carried, so it always matches the
weights: steps trained after the last checkpoint by a killed process are not listed twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from specforge_trainer.train.trainer import StepReport


class MetricsFile:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / "metrics.jsonl"
        self.plot_path = out_dir / "loss.png"
        self._handle: TextIO | None = None

    def on_start(self, restored: Sequence[StepReport]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w", encoding="utf-8")
        for report in restored:
            self._write(report)

    def on_step(self, report: StepReport) -> None:
        self._write(report)

    def _write(self, report: StepReport) -> None:
        assert self._handle is not None, "on_start opens the file"
        self._handle.write(json.dumps(report.to_json()) + "\n")
        self._handle.flush()

    def on_end(self, reports: Sequence[StepReport]) -> None:
        if self._handle is not None:
            self._handle.close()
        if reports:
            plot_curves(reports, self.plot_path)


def plot_curves(reports: Sequence[StepReport], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    steps = [report.step for report in reports]
    window = max(1, len(reports) // 20)
    figure, (loss_axes, accuracy_axes) = pyplot.subplots(1, 2, figsize=(11, 4))
    losses = [report.loss for report in reports]
    loss_axes.plot(steps, losses, alpha=0.3, label="per step")
    loss_axes.plot(steps, moving_average(losses, window), label=f"mean of {window} steps")
    loss_axes.set(xlabel="optimizer step", ylabel="loss (sum of 0.8^i * loss_i)", title="training loss")
    loss_axes.legend(fontsize="small")
    for position in range(len(reports[0].accuracy)):
        curve = moving_average([report.accuracy[position] for report in reports], window)
        accuracy_axes.plot(steps, curve, label=f"acc_{position}")
    accuracy_axes.set(
        xlabel="optimizer step",
        ylabel="accuracy",
        title=f"draft accuracy per position (mean of {window} steps)",
    )
    accuracy_axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values: the trend through per-step noise of small batches."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
