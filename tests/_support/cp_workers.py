"""Worker processes for multi-process control-plane tests: real OS processes sharing one store."""

from __future__ import annotations

import json
import time
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
    """Commit a (possibly overlapping) slice, then lease/ack until the run's ``total`` refs are acked."""
    ctl = DataFlowController(
        "run-mp", metadata_store=open_store(spec, "run-mp"), lease_timeout_s=lease_timeout_s
    )
    ctl.commit_samples(name, [make_ref(i, "run-mp") for i in range(*commit_range)])
    leased: list[str] = []
    out = Path(out_dir) / f"{name}.json"
    step = 0
    deadline = time.monotonic() + 120
    while ctl.store.acked_count() < total and time.monotonic() < deadline:
        refs = ctl.lease_train_refs(name, batch, timeout_s=0.2)
        if not refs:
            continue
        leased += [r.sample_id for r in refs]
        out.write_text(json.dumps(leased))  # before the ack: a kill after this line still tells
        time.sleep(0.002)  # a "training step"
        step += 1
        ctl.ack_train_refs(name, [r.sample_id for r in refs], global_step=step, optimizer_durable=True)
    out.write_text(json.dumps(leased))


def lease_then_hang(spec: tuple[str, str], name: str, n: int, out_dir: str, lease_timeout_s: float) -> None:
    """Lease ``n`` refs, report them, and hang until killed (a rank that dies mid-step)."""
    ctl = DataFlowController(
        "run-mp", metadata_store=open_store(spec, "run-mp"), lease_timeout_s=lease_timeout_s
    )
    refs = ctl.lease_train_refs(name, n, timeout_s=10)
    (Path(out_dir) / f"{name}.json").write_text(json.dumps([r.sample_id for r in refs]))
    time.sleep(3600)
