"""A trainer pod with the pool's overrides, really running on the real node: what a KWOK pod cannot show.

The run takes examples/hf-token-and-model-pvc.yaml's env (HF_TOKEN from a Secret key, the NCCL ConfigMap
as envFrom) and adds a Secret as envFrom, a ConfigMap and a claim as extra volumes, its own ServiceAccount,
pod labels and annotations and a non-default /dev/shm. Each is proven by what the container did:

- the dataset exists only in the extra ConfigMap volume: the run succeeds, with the step count of that
  file, only if the mount works;
- ``status.progress`` is patched by rank 0 with the token of the ServiceAccount the test created (the
  operator binds the run's progress Role to it);
- the trainer's own Python process records its env, its /dev/shm and its token's subject on the extra
  claim (:mod:`trainer_probe`, loaded as ``sitecustomize`` through PYTHONPATH), so nothing races the
  container's exit as an exec would.

The example's target model (an 8B model on a PVC, 8 GPUs) cannot run here; its admission and rendering are
tested on KWOK nodes (tests/e2e/test_chart_rbac.py, the day-one test).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from e2e.realpods.conftest import EXAMPLES, RealRuns, kubectl_apply, load_example
from e2e.realpods.test_modes_in_real_pods import SHORT
from specforge_api import parse_run_manifest
from specforge_trainer.resources import builtin_dataset_path
from specforge_trainer.train.data_schedule import DataSchedule

RUN = "pod-overrides"
SERVICE_ACCOUNT = "trainer-identity"
HF_TOKEN = "hf_real_pod_token"
OBJECT_STORE_KEY = "object-store-secret-key"
SHARED_MEMORY = "256Mi"
SHARED_MEMORY_BYTES = 256 * 2**20
EXTRA_DIR = "/extra"
EVIDENCE_CLAIM = "evidence"
# Fewer than chat-mini's 480 lines: the trained step count tells this file from the bundled one.
CONVERSATIONS = 96
PROBE = Path(__file__).with_name("trainer_probe.py")


def _dataset_subset() -> str:
    lines = Path(builtin_dataset_path("chat-mini")).read_text().splitlines()
    return "\n".join(lines[:CONVERSATIONS]) + "\n"


def _create_inputs(real_runs: RealRuns) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """The Secrets, ConfigMaps, claim and ServiceAccount the run refers to; returns the day-one example's
    NCCL ConfigMap and its trainer env and envFrom."""
    core, namespace = real_runs.core, real_runs.namespace
    nccl_settings, day_one = yaml.safe_load_all((EXAMPLES / "hf-token-and-model-pvc.yaml").read_text())
    core.create_namespaced_config_map(namespace, nccl_settings)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "hf-token"}, "stringData": {"token": HF_TOKEN}}
    )
    core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "object-store"}, "stringData": {"OBJECT_STORE_KEY": OBJECT_STORE_KEY}},
    )
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": "trainer-files"},
            "data": {"chat.jsonl": _dataset_subset(), "sitecustomize.py": PROBE.read_text()},
        },
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": EVIDENCE_CLAIM},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
        },
    )
    core.create_namespaced_service_account(namespace, {"metadata": {"name": SERVICE_ACCOUNT}})
    trainer = day_one["spec"]["trainer"]
    return nccl_settings, trainer["env"], trainer["envFrom"]


def _trainer_overrides(example_env: list[Any], example_env_from: list[Any]) -> dict[str, Any]:
    return {
        "serviceAccountName": SERVICE_ACCOUNT,
        "sharedMemorySize": SHARED_MEMORY,
        "podLabels": {"team": "search"},
        "podAnnotations": {"example.com/cost-center": "ml-42"},
        "env": [*example_env, {"name": "PYTHONPATH", "value": EXTRA_DIR}],
        "envFrom": [*example_env_from, {"secretRef": {"name": "object-store"}}],
        "volumes": [
            {"name": "trainer-files", "configMap": {"name": "trainer-files"}},
            {"name": "evidence", "persistentVolumeClaim": {"claimName": EVIDENCE_CLAIM}},
        ],
        "volumeMounts": [
            {"name": "trainer-files", "mountPath": EXTRA_DIR, "readOnly": True},
            {"name": "evidence", "mountPath": "/evidence"},
        ],
    }


def _steps_of_the_subset(manifest: dict[str, Any]) -> int:
    spec = parse_run_manifest(manifest).spec
    schedule = DataSchedule(
        CONVERSATIONS - spec.dataset.held_out_conversations, spec.training.batch_size, 1, spec.training.seed
    )
    return schedule.steps_per_epoch * spec.training.epochs


def _trainer_records(real_runs: RealRuns) -> list[dict[str, Any]]:
    evidence = real_runs.claim_dir(EVIDENCE_CLAIM)
    records = [json.loads(path.read_text()) for path in sorted(evidence.glob("*.json"))]
    trainers = [record for record in records if "train" in record["argv"]]
    assert trainers, f"no trainer process recorded itself in {evidence}: {records}"
    return trainers


def test_a_trainer_pod_gets_its_env_volumes_identity_metadata_and_shared_memory(
    real_runs: RealRuns, real_node: str
) -> None:
    nccl_settings, example_env, example_env_from = _create_inputs(real_runs)
    manifest = load_example(
        "local-colocated.yaml",
        training=SHORT,
        trainer=_trainer_overrides(example_env, example_env_from),
    )
    manifest["metadata"]["name"] = RUN
    manifest["spec"]["dataset"] = {"path": f"{EXTRA_DIR}/chat.jsonl"}
    kubectl_apply(manifest, real_runs.namespace)

    run = real_runs.wait_finished(RUN)
    progress = run["status"]["progress"]
    assert progress["step"] == progress["totalSteps"] == _steps_of_the_subset(manifest), progress

    (pod,) = real_runs.pods(RUN, "trainer")
    assert pod.spec.node_name == real_node
    assert pod.spec.service_account_name == SERVICE_ACCOUNT
    assert pod.metadata.labels["team"] == "search"
    assert pod.metadata.annotations["example.com/cost-center"] == "ml-42"

    for record in _trainer_records(real_runs):
        assert record["env"] == {
            "HF_TOKEN": HF_TOKEN,
            "NCCL_DEBUG": nccl_settings["data"]["NCCL_DEBUG"],
            "TORCH_NCCL_ASYNC_ERROR_HANDLING": nccl_settings["data"]["TORCH_NCCL_ASYNC_ERROR_HANDLING"],
            "OBJECT_STORE_KEY": OBJECT_STORE_KEY,
        }
        fstype, options = record["shm_mount"]
        assert fstype == "tmpfs", record["shm_mount"]
        assert record["shm_bytes"] == SHARED_MEMORY_BYTES, record
        assert f"size={SHARED_MEMORY_BYTES // 1024}k" in options.split(","), options
        assert record["token_subject"] == f"system:serviceaccount:{real_runs.namespace}:{SERVICE_ACCOUNT}"
