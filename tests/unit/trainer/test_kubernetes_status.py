"""Progress reporting to the run's status: patch shape, throttling, and failures that are never fatal."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from specforge_trainer.reporting.kubernetes_status import KubernetesProgressReporter, progress_patch
from specforge_trainer.train.trainer import StepReport


def _report(step: int) -> StepReport:
    return StepReport(
        step=step,
        total_steps=10,
        epoch=0,
        loss=2.5,
        step_losses=[2.5],
        accuracy=[0.5, 0.25],
        acceptance_length=0.625,
        samples_per_s=12.0,
        learning_rate=1e-3,
        step_time_s=0.1,
    )


def test_patch_body_uses_the_status_field_names() -> None:
    body = progress_patch(_report(3), now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert body == {
        "status": {
            "progress": {
                "step": 3,
                "totalSteps": 10,
                "epoch": 0,
                "loss": 2.5,
                "accuracy": [0.5, 0.25],
                "acceptanceLength": 0.625,
                "samplesPerSecond": 12.0,
                "stage": "Training",
                "stageDone": 3,
                "stageTotal": 10,
                "updatedAt": "2026-01-02T03:04:05Z",
            }
        }
    }


def test_throttled_to_the_interval_and_always_sent_at_the_end() -> None:
    sent: list[int] = []
    now = [0.0]
    reporter = KubernetesProgressReporter(
        lambda body: sent.append(body["status"]["progress"]["step"]), min_interval_s=5.0, clock=lambda: now[0]
    )
    for step, at in [(1, 0.0), (2, 1.0), (3, 4.9), (4, 5.0), (5, 9.0), (6, 10.1)]:
        now[0] = at
        reporter.on_step(_report(step))
    reporter.on_end([_report(7)])
    assert sent == [1, 4, 6, 7]


def test_a_failing_patch_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def failing(_: dict[str, Any]) -> None:
        raise ConnectionError("api server away")

    reporter = KubernetesProgressReporter(failing)
    reporter.on_step(_report(1))
    reporter.on_end([_report(2)])
    assert "could not report progress at step 2: api server away" in caplog.text


def test_disabled_without_the_operator_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPECFORGE_RUN_NAME", raising=False)
    monkeypatch.setenv("SPECFORGE_RUN_NAMESPACE", "default")
    assert KubernetesProgressReporter.from_environment() is None


def test_a_stage_before_training_is_reported_throttled_with_its_last_unit_always_sent() -> None:
    sent: list[tuple[str, int, int]] = []
    now = [0.0]
    reporter = KubernetesProgressReporter(
        lambda body: sent.append(
            (body["status"]["progress"]["stage"], body["status"]["progress"]["stageDone"],
             body["status"]["progress"]["stageTotal"])
        ),
        min_interval_s=5.0,
        clock=lambda: now[0],
    )  # fmt: skip
    for done, at in [(0, 0.0), (8, 1.0), (16, 6.0), (24, 7.0), (32, 7.5)]:
        now[0] = at
        reporter.on_stage("Regenerating", done, 32)
    assert sent == [("Regenerating", 0, 32), ("Regenerating", 16, 32), ("Regenerating", 32, 32)]
