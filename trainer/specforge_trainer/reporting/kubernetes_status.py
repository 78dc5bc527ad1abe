"""Report progress to the run's ``status.progress`` in Kubernetes (rank 0 of ``specforge train``).

Active only when ``SPECFORGE_RUN_NAME`` and ``SPECFORGE_RUN_NAMESPACE`` are set (the operator sets
them on the trainer pod). Writes a merge patch of the status subresource at most every
``min_interval_s`` and once at the end. A failed report is logged and training goes on: progress
is informational, and the API server being briefly away must not cost a training run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from specforge_api.pod_contract import PodEnv
from specforge_api.run import GROUP, PLURAL, VERSION

from specforge_trainer.train.trainer import StepReport

if TYPE_CHECKING:
    from specforge_trainer.speculative.qualification import Qualification

logger = logging.getLogger(__name__)

Patcher = Callable[[dict[str, Any]], None]


def progress_patch(report: StepReport, *, now: datetime | None = None) -> dict[str, Any]:
    return {
        "status": {
            "progress": {
                "step": report.step,
                "totalSteps": report.total_steps,
                "epoch": report.epoch,
                "loss": report.loss,
                "accuracy": report.accuracy,
                "acceptanceLength": report.acceptance_length,
                "samplesPerSecond": report.samples_per_s,
                "stage": "Training",
                "stageDone": report.step,
                "stageTotal": report.total_steps,
                "updatedAt": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        }
    }


def qualification_patch(
    result: Qualification, *, final: bool = True, now: datetime | None = None
) -> dict[str, Any]:
    """status.evaluation (and export); ``final`` when training is over (stage Evaluated), else the best
    checkpoint measured so far (evaluation.intervalSteps) while training goes on."""
    report = result.report
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: dict[str, Any] = {
        "evaluation": {
            "checkpoint": report.checkpoint,
            "prompts": report.prompts,
            "draftSteps": report.draft_steps,
            "acceptanceLength": round(report.acceptance_length, 4),
            "simulatedAcceptanceLength": report.simulated_acceptance_length,
            "tokensPerTargetForward": round(report.tokens_per_target_forward, 4),
            "positionAcceptance": [round(rate, 4) for rate in report.position_acceptance],
            "speedup": round(report.speedup, 4),
            "lossless": report.identical_to_greedy,
            "checkpointsCompared": result.checkpoints_compared,
            "updatedAt": stamp,
        },
    }
    if final:
        status["progress"] = {"stage": "Evaluated", "updatedAt": stamp}
    if result.export_path is not None:
        status["export"] = {
            "path": str(result.export_path),
            "format": result.export_format,
            "checkpoint": report.checkpoint,
        }
    return {"status": status}


def kubernetes_status_patcher(name: str, namespace: str) -> Patcher:
    """A patcher using in-cluster credentials, else the KUBECONFIG ones."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()

    def patch(body: dict[str, Any]) -> None:
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, PLURAL, name, body, _content_type="application/merge-patch+json"
        )

    return patch


class KubernetesProgressReporter:
    def __init__(
        self, patch: Patcher, *, min_interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self.patch = patch
        self.min_interval_s = min_interval_s
        self.clock = clock
        self._last_sent: float | None = None

    @classmethod
    def from_environment(cls) -> KubernetesProgressReporter | None:
        env = PodEnv.from_environ()
        name, namespace = env.run_name, env.run_namespace
        if not name or not namespace:
            return None
        try:
            return cls(kubernetes_status_patcher(name, namespace))
        except Exception as error:  # no credentials: train anyway
            logger.warning("progress reporting to Kubernetes disabled: %s", error)
            return None

    def on_start(self, restored: Sequence[StepReport]) -> None:
        return None

    def on_step(self, report: StepReport) -> None:
        now = self.clock()
        if self._last_sent is None or now - self._last_sent >= self.min_interval_s:
            self._send(report)
            self._last_sent = now

    def on_end(self, reports: Sequence[StepReport]) -> None:
        if reports:
            self._send(reports[-1])

    def on_stage(self, stage: str, done: int, total: int) -> None:
        """Progress of a stage before training (``Regenerating``), throttled like steps; the last unit
        is always sent."""
        now = self.clock()
        if done < total and self._last_sent is not None and now - self._last_sent < self.min_interval_s:
            return
        self._last_sent = now
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "status": {
                "progress": {"stage": stage, "stageDone": done, "stageTotal": total, "updatedAt": stamp}
            }
        }
        try:
            self.patch(body)
        except Exception as error:  # never fatal: see the module docstring
            logger.warning("could not report %s progress (%d/%d): %s", stage, done, total, error)

    def on_qualification(self, result: Qualification, *, final: bool = True) -> None:
        """An evaluation (and export after training); sent at once, and never fatal."""
        try:
            self.patch(qualification_patch(result, final=final))
        except Exception as error:  # see the module docstring
            logger.warning("could not report the evaluation: %s", error)

    def _send(self, report: StepReport) -> None:
        try:
            self.patch(progress_patch(report))
        except Exception as error:  # never fatal: see the module docstring
            logger.warning("could not report progress at step %d: %s", report.step, error)
