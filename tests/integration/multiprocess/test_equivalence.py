"""The equivalence gate: the deployment mode changes the control plane, never the loss curve.

One seed, one dataset, four legs through the same builders: ``local_colocated`` (NoOp, its own process),
``dataflow_colocated`` on SQLite (in this process) and on Redis (a trainer process), and
``disaggregated`` (two producer processes streaming into Redis while a trainer process trains).
Every per-step loss must be bit-identical, and the durable legs must have left their ack markers:
every scheduled (epoch, sample) acked at the step that trained it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _support.multiprocess_runs import (
    scheduled_ack_steps,
    specforge,
    step_losses,
    write_dataset,
    write_manifest,
)
from specforge_trainer.build import build_offline_trainer
from specforge_trainer.control_plane import DeploymentMode, RedisMetadataStore, SQLiteMetadataStore
from specforge_trainer.train.distributed import ParallelContext

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CONVERSATIONS = 16


def test_every_mode_gives_the_same_loss_curve_bit_for_bit(tmp_path: Path, redis_server) -> None:
    dataset = write_dataset(tmp_path, CONVERSATIONS)
    curves: dict[str, list[list[float]]] = {}

    local, local_manifest = write_manifest(tmp_path, "eq-local", "local_colocated", dataset)
    done = specforge("run", local_manifest, "--out", tmp_path / "local")
    assert done.returncode == 0, done.stderr[-3000:]
    curves["local_colocated"] = step_losses(tmp_path / "local")

    sqlite_run, _ = write_manifest(tmp_path, "eq-sqlite", "dataflow_colocated", dataset)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what the CLI's processes use: reductions split differently across threads
    trainer = build_offline_trainer(
        sqlite_run,
        out_dir=tmp_path / "sqlite",
        feature_store_dir=tmp_path / "sqlite-features",
        mode=DeploymentMode.DATAFLOW_COLOCATED,
        metadata_db_path=tmp_path / "metadata.db",
        context=ParallelContext(rank=0, world_size=1, device=torch.device("cpu")),
    )
    try:
        curves["dataflow_colocated/sqlite"] = [report.step_losses for report in trainer.train()]
    finally:
        torch.set_num_threads(threads)
        trainer.controller.close()

    env = {"SPECFORGE_METADATA_URL": redis_server.url}
    durable = {}
    for mode in ("dataflow_colocated", "disaggregated"):
        run, manifest = write_manifest(tmp_path, f"eq-{mode.replace('_', '-')}", mode, dataset)
        done = specforge("run", manifest, "--out", tmp_path / mode, env=env)
        assert done.returncode == 0, done.stderr[-3000:]
        curves[f"{mode}/redis"] = step_losses(tmp_path / mode)
        durable[mode] = run

    reference = curves["local_colocated"]
    assert len(reference) == 2 * (CONVERSATIONS // 2)
    assert {leg: curve == reference for leg, curve in curves.items()} == dict.fromkeys(curves, True)

    expected = scheduled_ack_steps(local, CONVERSATIONS)
    with SQLiteMetadataStore(tmp_path / "metadata.db", run_id="eq-sqlite") as store:
        assert store.acked_steps() == expected
    for run in durable.values():
        with RedisMetadataStore(redis_server.url, run_id=run.name) as store:
            assert store.acked_steps() == expected
            marker = store.durable_marker()
            assert marker is not None and marker.global_step == len(reference)
            assert marker.acked_count == len(expected)
    # Retention: the disaggregated run's streamed features were released once checkpointed and acked.
    assert list((tmp_path / "disaggregated" / "features").glob("*.safetensors")) == []
