"""Each deployment mode trains to Succeeded in real containers on the real node, and gives the final
draft weights ``specforge run`` of the same manifest gives on this machine, byte for byte.

Runs are applied with ``kubectl apply`` and reconciled by the operator the chart installed; the examples
are scaled to one short epoch. Progress in ``status`` is what the real rank 0 patched.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from _support.multiprocess_runs import scheduled_ack_steps
from e2e.realpods.conftest import RealRuns, kubectl_apply, load_example, newest_weights, train_on_host
from specforge_api import DatasetSource, parse_run_manifest
from specforge_trainer.control_plane.stores.redis import RedisMetadataStore
from specforge_trainer.resources import builtin_dataset_path
from specforge_trainer.train.data_schedule import DataSchedule

SHORT = {"epochs": 1, "maxLength": 64, "checkpointInterval": 25}
# The bundled conversations the examples train on: all but the default held-out ones.
CHAT_MINI = len(Path(builtin_dataset_path("chat-mini")).read_text().splitlines()) - (
    DatasetSource.model_fields["held_out_conversations"].default
)


def _expected_steps(manifest: dict[str, Any]) -> int:
    spec = parse_run_manifest(manifest).spec
    world = spec.trainer.replicas * max(spec.trainer.gpus_per_replica, 1)
    schedule = DataSchedule(CHAT_MINI, spec.training.batch_size, world, spec.training.seed)
    return schedule.steps_per_epoch * spec.training.epochs


def _train_in_cluster(real_runs: RealRuns, manifest: dict[str, Any], node: str) -> dict[str, Any]:
    kubectl_apply(manifest, real_runs.namespace)
    name = manifest["metadata"]["name"]
    run = real_runs.wait_finished(name)
    pods = real_runs.pods(name, "trainer")
    assert pods and {pod.spec.node_name for pod in pods} == {node}, "trainer pods ran off the real node"
    progress = run["status"]["progress"]
    assert progress["step"] == progress["totalSteps"] == _expected_steps(manifest), progress
    return run


def test_local_colocated_trains_in_a_real_pod_and_matches_the_laptop(real_runs, real_node, tmp_path):
    # One pod, NoOp store: its scratch checkpoints would vanish with the pod, so keep them on a claim.
    real_runs.core.create_namespaced_persistent_volume_claim(
        real_runs.namespace,
        {
            "metadata": {"name": "checkpoints"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    manifest = load_example(
        "local-colocated.yaml",
        training=SHORT,
        checkpoints={
            "path": "/checkpoints",
            "volume": {"persistentVolumeClaim": {"claimName": "checkpoints"}},
        },
    )
    _train_in_cluster(real_runs, manifest, real_node)
    assert newest_weights(real_runs.claim_dir("checkpoints")) == train_on_host(manifest, tmp_path / "host")


def test_dataflow_colocated_ranks_rendezvous_across_pods_and_within_a_pod(real_runs, real_node, tmp_path):
    """Master + Worker pods meet through the PyTorchJob's master Service (gloo); one pod with two
    GPUs runs two ranks under torchrun. Same world size, same schedule: the same weights as each other
    and as the laptop."""
    across = load_example("dataflow-colocated.yaml", training=SHORT)
    within = load_example(
        "dataflow-colocated.yaml", training=SHORT, trainer={"replicas": 1, "gpusPerReplica": 2}
    )
    within["metadata"]["name"] = "dataflow-torchrun"
    _train_in_cluster(real_runs, across, real_node)
    _train_in_cluster(real_runs, within, real_node)
    across_weights = newest_weights(real_runs.claim_dir("dataflow-demo-checkpoints"))
    within_weights = newest_weights(real_runs.claim_dir("dataflow-torchrun-checkpoints"))
    assert across_weights == within_weights
    assert across_weights == train_on_host(across, tmp_path / "host")


def _acked_steps(real_runs: RealRuns, run: str) -> dict[str, int]:
    """The run's acks, read from its own Redis over the Service (kube-proxy routes this host too)."""
    core = real_runs.core
    service = core.read_namespaced_service(f"{run}-redis", real_runs.namespace)
    secret = core.read_namespaced_secret(f"{run}-redis-auth", real_runs.namespace)
    password = base64.b64decode(secret.data["password"]).decode()
    url = f"redis://{service.spec.cluster_ip}:6379/0"
    scope = f"{real_runs.namespace}/{run}/{real_runs.get(run)['metadata']['uid']}"  # control_plane.run_scope in a pod
    with RedisMetadataStore(url, run_id=scope, password=password) as store:
        return store.acked_steps()


@pytest.mark.parametrize("trainers", [2], ids=["2-producers-2-trainers"])
def test_disaggregated_producers_feed_every_rank_each_sample_acked_once(
    real_runs, real_node, tmp_path, trainers
):
    manifest = load_example(
        "disaggregated.yaml", training=SHORT, trainer={"replicas": trainers, "gpusPerReplica": 1}
    )
    _train_in_cluster(real_runs, manifest, real_node)
    name = manifest["metadata"]["name"]
    producers = real_runs.pods(name, "producer")
    assert (
        len({pod.metadata.annotations["batch.kubernetes.io/job-completion-index"] for pod in producers}) == 2
    )
    run = parse_run_manifest(manifest)
    assert _acked_steps(real_runs, name) == scheduled_ack_steps(run, CHAT_MINI, world_size=trainers)
    assert newest_weights(real_runs.claim_dir(f"{name}-checkpoints")) == train_on_host(
        manifest, tmp_path / "host"
    )
