"""Same seed, same per-step loss, bit for bit: offline vs online features, NoOp vs durable control plane.

Also checks what differs between the modes: the durable run acks every trained sample in its store at
the optimizer boundary, and the NoOp run leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from specforge_trainer.build import build_offline_trainer, build_online_trainer
from specforge_trainer.control_plane import DeploymentMode, SQLiteMetadataStore

pytestmark = pytest.mark.slow


def test_offline_online_and_durable_runs_agree_step_by_step(
    tmp_path: Path, make_manifest, cpu_context
) -> None:
    run, _ = make_manifest(maxSteps=8)
    offline = build_offline_trainer(
        run, out_dir=tmp_path / "offline", feature_store_dir=tmp_path / "f1", context=cpu_context
    )
    online = build_online_trainer(run, out_dir=tmp_path / "online", context=cpu_context)
    durable_run, _ = make_manifest(name="durable", mode="dataflow_colocated", maxSteps=8)
    database = tmp_path / "metadata.db"
    durable = build_offline_trainer(
        durable_run,
        out_dir=tmp_path / "durable",
        feature_store_dir=tmp_path / "f2",
        mode=DeploymentMode.DATAFLOW_COLOCATED,
        metadata_db_path=database,
        context=cpu_context,
    )
    assert (offline.durable_ack, durable.durable_ack) == (False, True)
    losses = {name: [r.step_losses for r in t.train()] for name, t in
              [("offline", offline), ("online", online), ("durable", durable)]}  # fmt: skip
    assert len(losses["offline"]) == 8
    assert losses["online"] == losses["offline"]
    assert losses["durable"] == losses["offline"]
    assert online.ref_source.store._features == {}  # online features are released as consumed
    with SQLiteMetadataStore(database, run_id="durable") as store:
        assert store.acked_count() == 8 * 2
        assert store.durable_marker().global_step == 8  # type: ignore[union-attr]
    assert offline.controller.status().acked == 0
