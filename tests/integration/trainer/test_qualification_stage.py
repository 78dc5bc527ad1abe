"""spec.evaluation and spec.export in a run: after training, the held-out conversations are decoded with
real speculative decoding, the report lands beside the checkpoints, and only a qualifying draft is
exported (a serving directory that passes SGLang's loader check)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.multiprocess_runs import specforge, step_losses, write_dataset, write_manifest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _manifest(tmp_path: Path, name: str, evaluation: dict[str, Any], **training: Any) -> Path:
    dataset = write_dataset(tmp_path, conversations=12)
    _, path = write_manifest(tmp_path, name, "local_colocated", dataset, **{"epochs": 1, **training})
    document = yaml.safe_load(path.read_text())
    document["spec"]["evaluation"] = {"maxNewTokens": 16, "prompts": 2, **evaluation}
    document["spec"]["export"] = {"to": "sglang"}
    path.write_text(yaml.safe_dump(document))
    return path


def test_a_qualifying_draft_is_measured_and_exported(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = specforge("run", _manifest(tmp_path, "qualifies", {"minAcceptanceLength": 0}), "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "evaluation.json").read_text())
    assert report["prompts"] == 2 and report["identical_to_greedy"] is True
    assert Path(report["checkpoint"]).parent == out
    (exported,) = (out / "exports").iterdir()
    assert exported.name == f"{Path(report['checkpoint']).name}-sglang"
    assert {p.name for p in exported.iterdir()} == {"config.json", "model.safetensors"}
    assert "draft qualifies" in result.stderr and f"exported (sglang): {exported}" in result.stderr


def test_a_draft_below_the_threshold_is_reported_and_not_exported(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = specforge("run", _manifest(tmp_path, "short", {"minAcceptanceLength": 60}), "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "evaluation.json").is_file()
    assert not (out / "exports").exists()
    assert (
        "draft does not qualify: acceptance length" in result.stderr
        and "< minAcceptanceLength 60" in result.stderr
    )


def test_with_an_interval_the_best_measured_checkpoint_is_kept_reported_and_exported(tmp_path: Path) -> None:
    training = {"epochs": 2, "checkpointInterval": 3, "keepCheckpoints": 1}
    measured = _manifest(tmp_path, "measured", {"minAcceptanceLength": 0, "intervalSteps": 3}, **training)
    result = specforge("run", measured, "--out", tmp_path / "measured")
    assert result.returncode == 0, result.stderr[-3000:]
    plain = specforge("run", _manifest(tmp_path, "plain", {"minAcceptanceLength": 0}, **training),
                      "--out", tmp_path / "plain")  # fmt: skip
    assert plain.returncode == 0, plain.stderr[-3000:]
    # Measuring along the way leaves training alone: the same loss curve, bit for bit.
    assert step_losses(tmp_path / "measured") == step_losses(tmp_path / "plain")

    out = tmp_path / "measured"
    ledger = [json.loads(line) for line in (out / "evaluations.jsonl").read_text().splitlines()]
    assert [Path(entry["checkpoint"]).name.split("_step_")[1] for entry in ledger] == ["3", "6", "9", "12"]
    assert sum("evaluation at step" in line for line in result.stderr.splitlines()) == 4
    best = max(ledger, key=lambda e: (e["identical_to_greedy"], e["acceptance_length"], ledger.index(e)))
    report = json.loads((out / "evaluation.json").read_text())
    assert report["checkpoint"] == best["checkpoint"] and report["checkpoints_compared"] == 4
    # keepCheckpoints 1 keeps the newest, and the best stays beside it.
    kept = {p.name for p in out.iterdir() if p.name.startswith("epoch_")}
    assert kept == {Path(best["checkpoint"]).name, "epoch_1_step_12"}
    (exported,) = (out / "exports").iterdir()
    assert exported.name == f"{Path(best['checkpoint']).name}-sglang"
    assert "best of 4 checkpoints" in result.stderr
