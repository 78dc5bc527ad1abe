"""Worker processes for multi-process control-plane tests: real OS processes sharing one store."""

from __future__ import annotations

import json
import time
import zlib
from collections import deque
from pathlib import Path

from specforge_trainer.control_plane import DataFlowController, MetadataStore, SQLiteMetadataStore

from _support.control_plane import make_ref


def open_store(spec: tuple[str, str], run_id: str) -> MetadataStore:
    kind, where = spec
    if kind == "sqlite":
        return SQLiteMetadataStore(where, run_id=run_id)
    from specforge_trainer.control_plane import RedisMetadataStore

    return RedisMetadataStore(where, run_id=run_id)


def producer_trainer(
    spec: tuple[str, str],
    name: str,
    commit_range: tuple[int, int],
    total: int,
    out_dir: str,
    lease_timeout_s: float = 30.0,
    batch: int = 16,
) -> None:
    """Commit a (possibly overlapping) slice, then lease/ack by name until the run's ``total`` refs are acked.

    Every worker walks all ``total`` ids, each from its own starting point (its name's hash), so workers
    compete for the same refs: a batch answers only the refs no live holder has, and what it missed
    (held by another, not committed yet, acked by another) goes to the back of the worker's list.
    """
    ctl = DataFlowController(
        "run-mp", metadata_store=open_store(spec, "run-mp"), lease_timeout_s=lease_timeout_s
    )
    ctl.commit_samples(name, [make_ref(i, "run-mp") for i in range(*commit_range)])
    start = zlib.crc32(name.encode()) % total
    todo = deque(f"s{i % total:05d}" for i in range(start, start + total))
    leased: list[str] = []
    out = Path(out_dir) / f"{name}.json"
    step = 0
    deadline = time.monotonic() + 120
    while todo and ctl.store.acked_count() < total and time.monotonic() < deadline:
        wanted = [todo.popleft() for _ in range(min(batch, len(todo)))]
        refs = ctl.lease_named_refs(name, wanted)
        got = {r.sample_id for r in refs}
        todo.extend(s for s in wanted if s not in got)
        if not refs:
            time.sleep(0.01)
            continue
        leased += [r.sample_id for r in refs]
        out.write_text(json.dumps(leased))  # before the ack: a kill after this line still tells
        time.sleep(0.002)  # a "training step"
        step += 1
        ctl.ack_train_refs(name, [r.sample_id for r in refs], global_step=step, optimizer_durable=True)
    out.write_text(json.dumps(leased))


def lease_then_hang(spec: tuple[str, str], name: str, n: int, out_dir: str, lease_timeout_s: float) -> None:
    """Lease the first ``n`` refs, report them, and hang until killed (a rank that dies mid-step)."""
    ctl = DataFlowController(
        "run-mp", metadata_store=open_store(spec, "run-mp"), lease_timeout_s=lease_timeout_s
    )
    refs = ctl.lease_named_refs(name, [f"s{i:05d}" for i in range(n)], timeout_s=10)
    (Path(out_dir) / f"{name}.json").write_text(json.dumps([r.sample_id for r in refs]))
    time.sleep(3600)
