"""The stages around training in real pods: two producers answer the dataset with the target
(spec.dataset.regenerate), one of them is killed mid-stage and its replacement resumes; the file on the
features claim is byte-identical to ``specforge regenerate`` of the same manifest on this machine. After
training, rank 0 decodes the held-out conversations (spec.evaluation), reports ``status.evaluation``, the
operator sets ``DraftQualified``, and the qualified draft is exported onto the checkpoints claim."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import yaml
from e2e.conftest import wait_for
from e2e.realpods.conftest import RealRuns, kubectl_apply, load_example
from specforge_trainer.resources import builtin_dataset_path

NAME = "stages-demo"
SHORT = {"epochs": 1, "maxLength": 64, "checkpointInterval": 25}
REGENERATE = {"maxNewTokens": 24, "batchSize": 4}
TOTAL_BATCHES = -(
    -len(Path(builtin_dataset_path("chat-mini")).read_text().splitlines()) // REGENERATE["batchSize"]
)


def _batches_done(features: Path) -> int:
    parts = list((features / "regenerated").glob(f"{NAME}-*.jsonl.parts"))
    return len(list(parts[0].glob("batch-*.jsonl"))) if parts else 0


def test_regeneration_survives_a_killed_producer_then_the_draft_is_measured_and_exported(
    real_runs: RealRuns, real_node: str, tmp_path: Path
) -> None:
    manifest = load_example(
        "disaggregated.yaml",
        training=SHORT,
        dataset={"regenerate": REGENERATE},
        evaluation={"prompts": 2, "maxNewTokens": 16, "minAcceptanceLength": 0},
        export={"to": "sglang"},
    )
    manifest["metadata"]["name"] = NAME
    kubectl_apply(manifest, real_runs.namespace)

    features = wait_for(
        lambda: _claim_dir_or_none(real_runs, f"{NAME}-features"), "the features claim to bind", timeout=300
    )
    wait_for(lambda: _batches_done(features) >= 2, "the producers to finish two batches", timeout=600)
    victim = real_runs.pods(NAME, "producer")[0]
    real_runs.core.delete_namespaced_pod(victim.metadata.name, real_runs.namespace, grace_period_seconds=0)
    assert _batches_done(features) < TOTAL_BATCHES, "the kill came after the stage had finished"
    # The trainer pod starts beside the producers; once up it reports the stage it is in.
    stage = wait_for(
        lambda: ((real_runs.get(NAME).get("status") or {}).get("progress") or {}).get("stage"),
        "the trainer to report a stage",
        timeout=600,
        interval=1,
    )

    run = real_runs.wait_finished(NAME)
    assert stage in ("Regenerating", "Training", "Evaluating", "Evaluated"), stage
    (regenerated,) = (features / "regenerated").glob(f"{NAME}-*.jsonl")
    manifest_path = tmp_path / f"{NAME}.yaml"
    manifest_path.write_text(yaml.safe_dump(manifest))
    host = tmp_path / "host.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "specforge_trainer.cli", "regenerate", str(manifest_path), "--out", str(host)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert regenerated.read_bytes() == host.read_bytes()

    status = run["status"]
    evaluation = status["evaluation"]
    assert evaluation["prompts"] == 2 and evaluation["lossless"] is True

    # The operator sets the condition from the figures the trainer patched just before its pod exited.
    def qualified() -> dict | None:
        conditions = real_runs.get(NAME)["status"]["conditions"]
        found = next((c for c in conditions if c["type"] == "DraftQualified"), None)
        return found if found and found["status"] == "True" else None

    assert "real acceptance length" in wait_for(qualified, "DraftQualified to become True")["message"]
    checkpoints = real_runs.claim_dir(f"{NAME}-checkpoints")
    exported = checkpoints / Path(status["export"]["path"]).relative_to("/checkpoints")
    assert {p.name for p in exported.iterdir()} == {"config.json", "model.safetensors"}
    assert status["export"]["format"] == "sglang"


def _claim_dir_or_none(real_runs: RealRuns, claim: str) -> Path | None:
    try:
        pvc = real_runs.core.read_namespaced_persistent_volume_claim(claim, real_runs.namespace)
    except Exception:
        return None
    if not pvc.spec.volume_name:
        time.sleep(1)
        return None
    return real_runs.claim_dir(claim)
