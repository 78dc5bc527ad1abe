"""Rendering per mode against checked-in golden manifests.

Regenerate after an intended change with ``SPECFORGE_UPDATE_GOLDEN=1 pytest tests/unit/operator`` and
review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from specforge_api import SpecForgeRun, load_run_manifest
from specforge_operator.plan import plan_children
from specforge_operator.render.store import redis_auth_secret
from specforge_operator.yaml_output import dump_yaml_all
from unit.operator.builders import build_run

REPO_ROOT = Path(__file__).resolve().parents[3]
GOLDEN_DIR = Path(__file__).parent / "golden"


def _from_example(file_name: str) -> SpecForgeRun:
    run = load_run_manifest(REPO_ROOT / "examples" / file_name)
    run.metadata.uid = "uid-1"
    return run


CASES = {
    "local-colocated-minimal": lambda: build_run("local_colocated"),
    "local-colocated-everything": lambda: build_run(
        "local_colocated",
        name="full",
        targetModel={
            "path": "/models/llama",
            "volume": {"persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
        },
        dataset={"path": "/data/chat.jsonl", "volume": {"hostPath": {"path": "/srv/data"}}},
        imagePullSecrets=[{"name": "regcred"}],
        trainer={
            "gpusPerReplica": 1,
            "nodeSelector": {"gpu": "a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "podAnnotations": {"example.com/note": "yes"},
        },
        runPolicy={"backoffLimit": 1, "ttlSecondsAfterFinished": 600, "activeDeadlineSeconds": 3600},
        scheduling={"priorityClassName": "high", "queueName": "team-a"},
    ),
    "dataflow-colocated-example": lambda: _from_example("dataflow-colocated.yaml"),
    "dataflow-colocated-external-store": lambda: build_run(
        "dataflow_colocated",
        metadataStore={
            "external": {"url": "redis://redis.example:6379/0", "passwordSecretRef": {"name": "auth"}}
        },
        scheduling={"queueName": "team-a", "priorityClassName": "high"},
    ),
    "disaggregated-example": lambda: _from_example("disaggregated.yaml"),
    "dataflow-colocated-jobset": lambda: build_run(
        "dataflow_colocated",
        trainer={"replicas": 2, "gpusPerReplica": 2, "backend": "jobset"},
        scheduling={"queueName": "team-a"},
    ),
}


def _render_all(run: SpecForgeRun) -> str:
    plan = plan_children(run, finished=False)
    manifests = list(plan.rendered)
    if plan.auth_secret:
        manifests.append(redis_auth_secret(run, "golden-password"))
    return dump_yaml_all(manifests)


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_matches_golden(case: str) -> None:
    rendered = _render_all(CASES[case]())
    golden = GOLDEN_DIR / f"{case}.yaml"
    if os.environ.get("SPECFORGE_UPDATE_GOLDEN") and (not golden.exists() or golden.read_text() != rendered):
        golden.write_text(rendered)
        pytest.fail(f"rewrote {golden.name}: review the diff, then run again without SPECFORGE_UPDATE_GOLDEN")
    assert golden.exists(), f"no golden file {golden}; run with SPECFORGE_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text()
