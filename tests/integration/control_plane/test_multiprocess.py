"""Several OS processes committing and leasing against one Redis server and one SQLite file."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections import Counter
from pathlib import Path

import pytest
from _support import cp_workers
from _support.control_plane import make_ref

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOTAL = 400


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request, tmp_path, redis_server_factory):
    if request.param == "sqlite":
        return ("sqlite", str(tmp_path / "meta.db"))
    return ("redis", redis_server_factory().url)


def leased_by(out_dir: Path) -> dict[str, list[str]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(out_dir.glob("*.json"))}


def test_no_ref_is_leased_twice_or_lost(shared_store, tmp_path):
    ctx = mp.get_context("spawn")
    # overlapping commit slices: every ref is committed by two processes and kept once
    slices = [(0, 200), (100, 300), (200, 400), (300, 400), (0, 100)]
    procs = [
        ctx.Process(
            target=cp_workers.producer_trainer, args=(shared_store, f"w{k}", rng, TOTAL, str(tmp_path))
        )
        for k, rng in enumerate(slices)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        assert p.exitcode == 0
    leases = leased_by(tmp_path)
    counts = Counter(s for ids in leases.values() for s in ids)
    assert len(counts) == TOTAL and set(counts.values()) == {1}, "a ref was lost or leased twice"
    assert sum(1 for ids in leases.values() if ids) >= 2  # the work was really shared
    store = cp_workers.open_store(shared_store, "run-mp")
    assert (store.committed_count(), store.acked_count(), store.leased_count()) == (TOTAL, TOTAL, 0)
    assert store.durable_marker().acked_count == TOTAL


def test_a_killed_ranks_leases_come_back(shared_store, tmp_path):
    store = cp_workers.open_store(shared_store, "run-mp")
    store.commit_samples([make_ref(i, "run-mp") for i in range(TOTAL)])
    ctx = mp.get_context("spawn")
    doomed = ctx.Process(
        target=cp_workers.lease_then_hang, args=(shared_store, "doomed", 40, str(tmp_path), 1.0)
    )
    doomed.start()
    deadline = time.monotonic() + 60
    while not (tmp_path / "doomed.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    doomed.kill()
    doomed.join()
    lost = json.loads((tmp_path / "doomed.json").read_text())
    assert len(lost) == 40 and store.leased_count() == 40
    survivors = [
        ctx.Process(
            target=cp_workers.producer_trainer,
            args=(shared_store, f"s{k}", (0, 0), TOTAL, str(tmp_path), 1.0),
        )
        for k in range(2)
    ]
    for p in survivors:
        p.start()
    for p in survivors:
        p.join(timeout=180)
        assert p.exitcode == 0
    retrained = Counter(s for name, ids in leased_by(tmp_path).items() if name != "doomed" for s in ids)
    assert set(retrained) == {make_ref(i).sample_id for i in range(TOTAL)} and set(retrained.values()) == {1}
    assert store.acked_count() == TOTAL and store.leased_count() == 0
