"""SQLiteMetadataStore: a durable store in one file, for durable-mode runs on a single host.

WAL journal with ``synchronous=FULL`` (a committed transaction survives power loss), a busy
timeout instead of "database is locked" errors, and ``BEGIN IMMEDIATE`` for every write so several
processes on the host serialise cleanly. Each process (and thread) opens its own connection, so the
store is safe to use after ``fork``. One table per kind of state, keyed by run id, so runs can share
a file without seeing each other.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..records import SampleRef
from .base import DurableMarker, MetadataStore, UnknownSampleError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS refs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    ref_json TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'leased', 'acked', 'failed')),
    holder TEXT,
    acked_step INTEGER,
    UNIQUE (run_id, sample_id)
);
CREATE INDEX IF NOT EXISTS refs_by_state ON refs (run_id, state, seq);
CREATE TABLE IF NOT EXISTS holders (
    run_id TEXT NOT NULL,
    trainer_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (run_id, trainer_id)
);
CREATE TABLE IF NOT EXISTS markers (
    run_id TEXT PRIMARY KEY,
    global_step INTEGER NOT NULL,
    optimizer_durable INTEGER NOT NULL,
    acked_count INTEGER NOT NULL
);
"""
_CHUNK = 500  # stays well under SQLite's bound-parameter limit


class SQLiteMetadataStore(MetadataStore):
    def __init__(
        self, path: str | os.PathLike[str], *, run_id: str = "default", busy_timeout_s: float = 30.0
    ) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._busy_timeout_s = busy_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._db().executescript(_SCHEMA)

    # -- connections ---------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():
            db = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_s * 1000)}")
            self._local.db, self._local.pid = db, os.getpid()
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _scalar(self, sql: str, *args: object) -> int:
        row = self._db().execute(sql, (self.run_id, *args)).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- commit ----------------------------------------------------------------------------------
    def commit_samples(self, refs: Sequence[SampleRef]) -> list[bool]:
        fresh = []
        with self._write() as db:
            for ref in refs:
                cur = db.execute(
                    "INSERT OR IGNORE INTO refs (run_id, sample_id, ref_json) VALUES (?, ?, ?)",
                    (self.run_id, ref.sample_id, ref.to_store_json()),
                )
                fresh.append(cur.rowcount == 1)
        return fresh

    def is_committed(self, sample_id: str) -> bool:
        return self._scalar("SELECT COUNT(*) FROM refs WHERE run_id = ? AND sample_id = ?", sample_id) == 1

    def get_committed(self, sample_id: str) -> SampleRef | None:
        row = (
            self._db()
            .execute("SELECT ref_json FROM refs WHERE run_id = ? AND sample_id = ?", (self.run_id, sample_id))
            .fetchone()
        )
        return SampleRef.from_store_json(row[0]) if row else None

    def committed_count(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM refs WHERE run_id = ?")

    def all_committed_ids(self) -> list[str]:
        rows = self._db().execute("SELECT sample_id FROM refs WHERE run_id = ? ORDER BY seq", (self.run_id,))
        return [r[0] for r in rows]

    # -- ack -------------------------------------------------------------------------------------
    def record_train_ack(
        self, sample_ids: Sequence[str], *, global_step: int, optimizer_durable: bool
    ) -> None:
        ids = list(dict.fromkeys(sample_ids))
        with self._write() as db:
            known = 0
            for chunk in _chunks(ids):
                marks = ",".join("?" * len(chunk))
                known += db.execute(
                    f"SELECT COUNT(*) FROM refs WHERE run_id = ? AND sample_id IN ({marks})",
                    (self.run_id, *chunk),
                ).fetchone()[0]
                db.execute(
                    f"UPDATE refs SET state = 'acked', holder = NULL, acked_step = ? "
                    f"WHERE run_id = ? AND state != 'acked' AND sample_id IN ({marks})",
                    (global_step, self.run_id, *chunk),
                )
            if known != len(ids):
                unknown = [s for s in ids if not self._is_committed_in(db, s)]
                raise UnknownSampleError(f"cannot ack sample ids that were never committed: {unknown[:5]}")
            acked = db.execute(
                "SELECT COUNT(*) FROM refs WHERE run_id = ? AND state = 'acked'", (self.run_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO markers (run_id, global_step, optimizer_durable, acked_count) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO UPDATE SET global_step = MAX(global_step, excluded.global_step), "
                "optimizer_durable = excluded.optimizer_durable, acked_count = excluded.acked_count",
                (self.run_id, global_step, int(optimizer_durable), acked),
            )

    def _is_committed_in(self, db: sqlite3.Connection, sample_id: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM refs WHERE run_id = ? AND sample_id = ?", (self.run_id, sample_id)
        ).fetchone()
        return row is not None

    def is_acked(self, sample_id: str) -> bool:
        return (
            self._scalar(
                "SELECT COUNT(*) FROM refs WHERE run_id = ? AND sample_id = ? AND state = 'acked'", sample_id
            )
            == 1
        )

    def acked_count(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM refs WHERE run_id = ? AND state = 'acked'")

    def acked_steps(self) -> dict[str, int]:
        rows = self._db().execute(
            "SELECT sample_id, acked_step FROM refs WHERE run_id = ? AND state = 'acked' ORDER BY seq",
            (self.run_id,),
        )
        return {sid: step for sid, step in rows}

    def durable_marker(self) -> DurableMarker | None:
        row = (
            self._db()
            .execute(
                "SELECT global_step, optimizer_durable, acked_count FROM markers WHERE run_id = ?",
                (self.run_id,),
            )
            .fetchone()
        )
        return DurableMarker(row[0], bool(row[1]), row[2]) if row else None

    def unack(self, sample_ids: Iterable[str]) -> int:
        ids = list(sample_ids)
        moved = 0
        with self._write() as db:
            for chunk in _chunks(ids):
                moved += db.execute(
                    f"UPDATE refs SET state = 'pending', acked_step = NULL "
                    f"WHERE run_id = ? AND state = 'acked' AND sample_id IN ({','.join('?' * len(chunk))})",
                    (self.run_id, *chunk),
                ).rowcount
            db.execute(
                "UPDATE markers SET acked_count = (SELECT COUNT(*) FROM refs WHERE run_id = ? AND state = 'acked') "
                "WHERE run_id = ?",
                (self.run_id, self.run_id),
            )
        return moved

    # -- shared leasing ------------------------------------------------------------------------
    def claim_named(
        self, trainer_id: str, sample_ids: Sequence[str], lease_timeout_s: float
    ) -> list[SampleRef]:
        held: dict[str, str] = {}
        with self._write() as db:
            self._heartbeat_and_reap(db, trainer_id, lease_timeout_s)
            for chunk in _chunks(list(sample_ids)):
                marks = ",".join("?" * len(chunk))
                db.execute(
                    f"UPDATE refs SET state = 'leased', holder = ? "
                    f"WHERE run_id = ? AND state = 'pending' AND sample_id IN ({marks})",
                    (trainer_id, self.run_id, *chunk),
                )
                rows = db.execute(
                    f"SELECT sample_id, ref_json FROM refs "
                    f"WHERE run_id = ? AND state = 'leased' AND holder = ? AND sample_id IN ({marks})",
                    (self.run_id, trainer_id, *chunk),
                )
                held.update(rows)
        return SampleRef.many_from_store_json(held[s] for s in sample_ids if s in held)

    def _heartbeat_and_reap(self, db: sqlite3.Connection, trainer_id: str, lease_timeout_s: float) -> None:
        now = time.time()
        db.execute(
            "INSERT INTO holders (run_id, trainer_id, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, trainer_id) DO UPDATE SET expires_at = excluded.expires_at",
            (self.run_id, trainer_id, now + lease_timeout_s),
        )
        dead = "SELECT trainer_id FROM holders WHERE run_id = ? AND expires_at < ?"
        db.execute(
            f"UPDATE refs SET state = 'pending', holder = NULL WHERE run_id = ? AND state = 'leased' AND holder IN ({dead})",
            (self.run_id, self.run_id, now),
        )
        db.execute("DELETE FROM holders WHERE run_id = ? AND expires_at < ?", (self.run_id, now))

    def clear_leases(self, trainer_id: str) -> int:
        with self._write() as db:
            moved = db.execute(
                "UPDATE refs SET state = 'pending', holder = NULL WHERE run_id = ? AND state = 'leased' AND holder = ?",
                (self.run_id, trainer_id),
            ).rowcount
            db.execute("DELETE FROM holders WHERE run_id = ? AND trainer_id = ?", (self.run_id, trainer_id))
        return moved

    def pending_count(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM refs WHERE run_id = ? AND state = 'pending'")

    def leased_count(self) -> int:
        return self._scalar("SELECT COUNT(*) FROM refs WHERE run_id = ? AND state = 'leased'")


def _chunks(items: list[str], size: int = _CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
