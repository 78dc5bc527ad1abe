"""Faults with real pods: a trainer pod, the Redis pod (persistence on) and a producer pod are deleted
mid-run; the run still succeeds, every (epoch, sample) is acked exactly once at the step the schedule
trains it, the final weights equal a fault-free laptop run's, and no child exists twice."""

from __future__ import annotations

from _support.multiprocess_runs import scheduled_ack_steps
from e2e.conftest import wait_for
from e2e.realpods.conftest import kubectl_apply, load_example, newest_weights, train_on_host
from e2e.realpods.test_modes_in_real_pods import CHAT_MINI, SHORT, _acked_steps
from kubernetes.client import BatchV1Api
from specforge_api import parse_run_manifest


def _step(real_runs, name: str) -> int:
    return ((real_runs.get(name).get("status") or {}).get("progress") or {}).get("step", 0)


def _delete_one(real_runs, name: str, component: str) -> str:
    """Delete a running pod of ``component`` and wait until the API server no longer has it."""
    pods = [p for p in real_runs.pods(name, component) if p.status.phase == "Running"]
    assert pods, f"no running {component} pod of {name} to delete"
    pod = pods[0].metadata
    real_runs.core.delete_namespaced_pod(pod.name, real_runs.namespace, grace_period_seconds=0)
    wait_for(
        lambda: all(p.metadata.uid != pod.uid for p in real_runs.pods(name, component)),
        f"the deleted {component} pod {pod.name} to be gone",
        timeout=120,
    )
    return pod.name


def _producers_done(real_runs) -> bool:
    job = BatchV1Api(real_runs.core.api_client).read_namespaced_job("faults-producers", real_runs.namespace)
    return (job.status.succeeded or 0) == 2


def test_deleted_trainer_redis_and_producer_pods_cost_nothing(real_runs, real_node, tmp_path):
    manifest = load_example(
        "disaggregated.yaml",
        training={**SHORT, "checkpointInterval": 10},
        trainer={"replicas": 2, "gpusPerReplica": 1},
        metadataStore={"managed": {"persistence": {"enabled": True, "size": "1Gi"}}},
    )
    manifest["metadata"]["name"] = "faults"
    kubectl_apply(manifest, real_runs.namespace)

    # A producer while producers stream, then a trainer rank and Redis once training is under way.
    wait_for(lambda: [p for p in real_runs.pods("faults", "producer") if p.status.phase == "Running"],
             "a running producer pod", timeout=600, interval=1)  # fmt: skip
    wait_for(lambda: _step(real_runs, "faults") >= 5, "the first steps", timeout=600, interval=1)
    _delete_one(real_runs, "faults", "producer")
    wait_for(lambda: _step(real_runs, "faults") >= 12, "steps after a checkpoint", timeout=600, interval=1)
    _delete_one(real_runs, "faults", "trainer")
    _delete_one(real_runs, "faults", "metadata-store")

    run = real_runs.wait_finished("faults")
    assert run["status"].get("restarts", 0) >= 1, run["status"]
    progress = run["status"]["progress"]
    assert progress["step"] == progress["totalSteps"], progress
    # No child twice: one Redis pod (kept after the run), each producer index completed once, the last trainer set only.
    redis_pods = [
        p for p in real_runs.pods("faults", "metadata-store") if p.metadata.deletion_timestamp is None
    ]
    assert len(redis_pods) == 1
    # The replacement of the deleted producer may still be finishing (it finds its refs committed) when
    # the trainers are done (the managed Redis it commits through stays up until it is). The Job's own
    # record counts completions: a producer deleted just as it exited 0 completes its index with no pod left.
    wait_for(lambda: _producers_done(real_runs), "the producer Job to complete", timeout=300, interval=1)
    job = BatchV1Api(real_runs.core.api_client).read_namespaced_job("faults-producers", real_runs.namespace)
    assert job.status.completed_indexes == "0,1", job.status

    expected = scheduled_ack_steps(parse_run_manifest(manifest), CHAT_MINI, world_size=2)
    assert _acked_steps(real_runs, "faults") == expected
    host = train_on_host(manifest, tmp_path / "host")
    assert newest_weights(real_runs.claim_dir("faults-checkpoints")) == host
