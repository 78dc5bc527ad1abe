"""The main job in a real pod: ``examples/smollm2.yaml`` (SmolLM2-135M-Instruct, which the trainer image
carries, on the bundled smol-chats), cut short, applied with kubectl. The pod trains the weights the
laptop trains from the same manifest, measures the held-out acceptance length the laptop measures, and
reports it in ``status.evaluation``; the export lands on the checkpoints claim."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.realpods.conftest import RealRuns, kubectl_apply, load_example, newest_weights, train_on_host

NAME = "smollm2-demo"
CLAIM = "smollm2-checkpoints"


def test_the_demo_trains_measures_and_exports_in_a_real_pod_as_on_the_laptop(
    real_runs: RealRuns, real_node: str, tmp_path: Path
) -> None:
    real_runs.core.create_namespaced_persistent_volume_claim(
        real_runs.namespace,
        {
            "metadata": {"name": CLAIM},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    manifest = load_example(
        "smollm2.yaml",
        training={"maxSteps": 4, "checkpointInterval": 2},
        evaluation={"prompts": 2, "maxNewTokens": 16, "minAcceptanceLength": 0},
        checkpoints={"path": "/checkpoints", "volume": {"persistentVolumeClaim": {"claimName": CLAIM}}},
    )
    # One whole core, as on the laptop (the CPU request sets the trainer's threads), and room for the
    # target's fp32 weights.
    manifest["spec"]["trainer"]["resources"] = {"cpu": "1", "memory": "4Gi"}
    kubectl_apply(manifest, real_runs.namespace)
    run = real_runs.wait_finished(NAME)
    (pod,) = real_runs.pods(NAME, "trainer")
    assert pod.spec.node_name == real_node

    checkpoints = real_runs.claim_dir(CLAIM)
    host = tmp_path / "host"
    assert newest_weights(checkpoints) == train_on_host(manifest, host)
    laptop = json.loads((host / "evaluation.json").read_text())
    evaluation = run["status"]["evaluation"]
    assert evaluation["acceptanceLength"] == round(laptop["acceptance_length"], 4), (evaluation, laptop)
    assert evaluation["lossless"] is True and evaluation["prompts"] == 2
    export = run["status"]["export"]
    assert (checkpoints / Path(export["path"]).relative_to("/checkpoints") / "model.safetensors").is_file()
