"""The pod contract: one description of each process, rendered into pods and started locally alike."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from specforge_api.pod_contract import (
    CONFIG_FILE,
    METADATA_STORE_DURABILITY,
    Env,
    expand_references,
    workload_env,
)
from specforge_operator.plan import plan_children
from specforge_operator.render.producers import producer_job
from specforge_operator.render.store import store_connection
from specforge_operator.workloads import workload_for
from specforge_trainer.local.launch import producer_specs, trainer_specs
from specforge_trainer.local.redis_server import LocalRedisServer
from unit.operator.builders import build_run

LOCAL_CLI = [sys.executable, "-m", "specforge_trainer.cli"]


def _container(pod_template: dict) -> dict:
    (container,) = pod_template["spec"]["containers"]
    return container


def _trainer_templates(run) -> list[dict]:
    workload = workload_for(run.spec.deployment_mode).render(run, store_connection(run))
    if workload["kind"] == "Job":
        return [workload["spec"]["template"]]
    return [spec["template"] for spec in workload["spec"]["pytorchReplicaSpecs"].values()]


def _pod_to_local(argv: list[str], manifest: Path, out: Path, features: Path) -> list[str]:
    """A pod's argv with the pod's paths swapped for a local run's: the only difference allowed."""
    paths = {CONFIG_FILE: str(manifest), "/checkpoints": str(out), "/features": str(features)}
    return [paths.get(arg, arg) for arg in argv]


@pytest.mark.parametrize(
    ("replicas", "gpus"), [(1, 0), (2, 1), (1, 2), (2, 4)], ids=["cpu", "2x1gpu", "1x2gpu", "2x4gpu"]
)
def test_a_trainer_pod_and_its_local_process_run_the_same_argv(tmp_path, replicas, gpus):
    run = build_run("dataflow_colocated", trainer={"replicas": replicas, "gpusPerReplica": gpus})
    manifest, out, features = tmp_path / "run.yaml", tmp_path / "out", tmp_path / "out" / "features"
    local = trainer_specs(run, manifest, out, features, "redis://127.0.0.1:1/0")
    assert len(local) == replicas
    for template in _trainer_templates(run):
        container = _container(template)
        pod_argv = _pod_to_local(container["command"], manifest, out, features)
        # What a pod's kubelet does with the env its PyTorchJob injects, for each replica.
        for index, process in enumerate(local):
            injected = workload_env(
                pod_index=index, replicas=replicas, gpus_per_replica=gpus,
                master_addr="127.0.0.1", master_port=int(process.env[Env.MASTER_PORT]),
            )  # fmt: skip
            expanded = expand_references(pod_argv, injected)
            program = LOCAL_CLI if expanded[0] == "specforge" else [sys.executable]
            assert list(process.argv) == [*program, *expanded[1:]]
            pod_env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
            for name, value in process.env.items():
                if name not in injected and name != Env.METADATA_URL:
                    assert pod_env[name] == value, name


def test_several_gpus_per_pod_start_one_rank_per_gpu_under_torchrun():
    run = build_run("dataflow_colocated", trainer={"replicas": 2, "gpusPerReplica": 4})
    (master, worker) = _trainer_templates(run)
    argv = _container(master)["command"]
    assert argv[:3] == ["python", "-m", "torch.distributed.run"]
    options = dict(zip(argv[3:13:2], argv[4:14:2], strict=True))
    assert options == {
        "--nnodes": "2",
        "--nproc-per-node": "4",
        "--node-rank": "$(RANK)",
        "--master-addr": "$(MASTER_ADDR)",
        "--master-port": "$(MASTER_PORT)",
    }
    assert argv[13:17] == ["-m", "specforge_trainer.cli", "train", "--config"]
    assert _container(worker)["command"] == argv
    workload = workload_for(run.spec.deployment_mode).render(run, store_connection(run))
    assert workload["spec"]["nprocPerNode"] == "4"


def test_one_process_per_pod_runs_the_cli_with_local_rank_zero():
    run = build_run("dataflow_colocated", trainer={"replicas": 2, "gpusPerReplica": 1})
    container = _container(_trainer_templates(run)[0])
    assert container["command"][:2] == ["specforge", "train"]
    assert {"name": "LOCAL_RANK", "value": "0"} in container["env"]


def test_workload_env_uses_the_names_pytorchjob_injects():
    # training-operator v1.9 (pkg/controller.v1/pytorch/envvar.go, master.go) sets these on every pod.
    injected = workload_env(pod_index=1, replicas=2, gpus_per_replica=4, master_addr="m", master_port=23456)
    assert injected == {"RANK": "1", "WORLD_SIZE": "8", "MASTER_ADDR": "m", "MASTER_PORT": "23456"}


def test_each_producer_pod_streams_its_own_shard_for_every_trainer_rank(tmp_path):
    run = build_run(
        "disaggregated",
        producers={"replicas": 3, "gpusPerReplica": 1},
        trainer={"replicas": 2, "gpusPerReplica": 2},
    )
    job = producer_job(run, store_connection(run))
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 3
    argv = _container(job["spec"]["template"])["command"]
    options = dict(zip(argv[2::2], argv[3::2], strict=False))
    assert options["--shard-index"] == "$(JOB_COMPLETION_INDEX)"
    assert options["--num-shards"] == "3"
    assert options["--trainer-world-size"] == "4"  # 2 pods x 2 ranks, not 2
    local = producer_specs(run, tmp_path / "run.yaml", tmp_path / "features", "redis://x:1/0", None)
    assert [dict(zip(p.argv, p.argv[1:], strict=False))["--shard-index"] for p in local] == ["0", "1", "2"]


def test_a_single_producer_is_still_indexed_shard_zero_of_one():
    run = build_run("disaggregated", producers={"replicas": 1, "gpusPerReplica": 1})
    job = producer_job(run, store_connection(run))
    assert job["spec"]["completionMode"] == "Indexed"
    assert "--num-shards" in (argv := _container(job["spec"]["template"])["command"])
    assert argv[argv.index("--num-shards") + 1] == "1"


def test_expand_references_works_like_the_kubelet():
    assert expand_references(["a$(X)b", "$(Y)", "$(UNSET)", "plain"], {"X": "1", "Y": "2"}) == [
        "a1b",
        "2",
        "$(UNSET)",
        "plain",
    ]


@pytest.mark.parametrize("mode", ["dataflow_colocated", "disaggregated"])
def test_durable_runs_keep_features_and_checkpoints_on_claims_they_own(mode):
    run = build_run(mode, featureStore={}, checkpoints={})
    plan = plan_children(run, finished=False)
    claims = {m["metadata"]["name"]: m for m in plan.to_apply if m["kind"] == "PersistentVolumeClaim"}
    assert {"demo-features", "demo-checkpoints"} <= set(claims)
    for claim in claims.values():
        assert claim["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    for template in _trainer_templates(run):
        volumes = {v["name"]: v for v in template["spec"]["volumes"]}
        assert volumes["checkpoints"]["persistentVolumeClaim"]["claimName"] == "demo-checkpoints"
        assert volumes["features"]["persistentVolumeClaim"]["claimName"] == "demo-features"
        assert template["spec"]["securityContext"]["fsGroup"] == 10001


def test_local_colocated_keeps_its_scratch_directories_in_the_pod():
    run = build_run("local_colocated")
    plan = plan_children(run, finished=False)
    assert not [m for m in plan.to_apply if m["kind"] == "PersistentVolumeClaim"]
    (template,) = _trainer_templates(run)
    volumes = {v["name"]: v for v in template["spec"]["volumes"]}
    assert "emptyDir" in volumes["checkpoints"] and "emptyDir" in volumes["features"]


def test_the_managed_store_and_a_local_run_start_redis_with_the_same_durability(tmp_path):
    run = build_run("dataflow_colocated")
    plan = plan_children(run, finished=False)
    (redis,) = [m for m in plan.to_apply if m["kind"] == "Deployment"]
    (container,) = redis["spec"]["template"]["spec"]["containers"]
    local = LocalRedisServer(tmp_path, config_args=METADATA_STORE_DURABILITY)._argv()
    for argv in (container["args"], local):
        joined = " ".join(argv)
        assert " ".join(METADATA_STORE_DURABILITY) in joined, argv
