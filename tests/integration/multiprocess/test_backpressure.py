"""Backpressure: a producer that outruns its trainer pauses at its bound of unacked refs, so the feature
store stops growing, and resumes as soon as acks make room. A real producer process, a real Redis;
this test plays the trainer by leasing and acking through the controller."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support.multiprocess_runs import write_dataset, write_manifest
from specforge_trainer.control_plane import DataFlowController, RedisMetadataStore

pytestmark = [pytest.mark.slow, pytest.mark.integration]
BOUND = 4


def settle(store: RedisMetadataStore, features: Path, quiet_s: float = 1.5, timeout_s: float = 120) -> int:
    """Wait until the committed count stops moving for ``quiet_s``; return it."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = store.committed_count()
        if now != last:
            last, since = now, time.monotonic()
        elif now and time.monotonic() - since > quiet_s:
            return now
        time.sleep(0.05)
    raise AssertionError(f"the producer never paused (committed {last})")


def test_producer_pauses_at_its_bound_and_resumes_on_acks(tmp_path: Path, redis_server) -> None:
    run, manifest = write_manifest(tmp_path, "bp", "disaggregated", write_dataset(tmp_path, 16), producers=1)
    features = tmp_path / "features"
    producer = subprocess.Popen(
        [sys.executable, "-m", "specforge_trainer.cli", "produce", "--config", str(manifest),
         "--feature-store", str(features), "--max-unacked-refs", str(BOUND)],
        env={**os.environ, "SPECFORGE_METADATA_URL": redis_server.url},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    store = RedisMetadataStore(redis_server.url, run_id=run.name)
    controller = DataFlowController(run.name, metadata_store=store)
    try:
        assert settle(store, features) == BOUND
        assert len(list(features.glob("*.safetensors"))) == BOUND  # the store stopped growing too
        assert producer.poll() is None

        refs = controller.lease_named_refs("trainer-0", store.all_committed_ids()[:2], timeout_s=5)
        assert len(refs) == 2
        controller.ack_train_refs(
            "trainer-0", [r.sample_id for r in refs], global_step=1, optimizer_durable=True
        )
        assert settle(store, features) == BOUND + 2  # exactly the room the acks made
    finally:
        producer.kill()
        producer.wait()
        controller.close()


def test_a_bound_below_one_global_batch_is_refused(tmp_path: Path, redis_server) -> None:
    _, manifest = write_manifest(
        tmp_path, "bp-small", "disaggregated", write_dataset(tmp_path, 16), batchSize=4
    )
    done = subprocess.run(
        [sys.executable, "-m", "specforge_trainer.cli", "produce", "--config", str(manifest),
         "--feature-store", str(tmp_path / "f"), "--max-unacked-refs", "3"],
        env={**os.environ, "SPECFORGE_METADATA_URL": redis_server.url},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "must hold at least one global batch (4)" in done.stderr
