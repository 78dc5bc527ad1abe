"""InMemoryMetadataStore: the full store contract in one process's memory (tests, local durable-mode runs).

Thread-safe; state lives as long as the object. Leases follow the holder-heartbeat rule of
:mod:`.base`, on ``time.monotonic``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

from ..records import SampleRef
from .base import DurableMarker, MetadataStore, UnknownSampleError


class InMemoryMetadataStore(MetadataStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, SampleRef] = {}  # insertion order is commit order
        self._pending: set[str] = set()  # leased by name only, so in no particular order
        self._acked: dict[str, int] = {}
        self._owner: dict[str, str] = {}
        self._heartbeat: dict[str, float] = {}  # holder -> expiry (monotonic)
        self._marker: DurableMarker | None = None

    def commit_samples(self, refs: Sequence[SampleRef]) -> list[bool]:
        fresh = []
        with self._lock:
            for ref in refs:
                new = ref.sample_id not in self._refs
                if new:
                    self._refs[ref.sample_id] = ref
                    self._pending.add(ref.sample_id)
                fresh.append(new)
        return fresh

    def is_committed(self, sample_id: str) -> bool:
        return sample_id in self._refs

    def get_committed(self, sample_id: str) -> SampleRef | None:
        return self._refs.get(sample_id)

    def committed_count(self) -> int:
        return len(self._refs)

    def all_committed_ids(self) -> list[str]:
        with self._lock:
            return list(self._refs)

    def record_train_ack(
        self,
        sample_ids: Sequence[str],
        *,
        global_step: int,
        optimizer_durable: bool,
    ) -> None:
        with self._lock:
            unknown = [s for s in sample_ids if s not in self._refs]
            if unknown:
                raise UnknownSampleError(f"cannot ack sample ids that were never committed: {unknown[:5]}")
            for sid in sample_ids:
                self._acked.setdefault(sid, global_step)
                self._pending.discard(sid)
                self._owner.pop(sid, None)
            previous = self._marker.global_step if self._marker else global_step
            self._marker = DurableMarker(max(previous, global_step), optimizer_durable, len(self._acked))

    def is_acked(self, sample_id: str) -> bool:
        return sample_id in self._acked

    def acked_count(self) -> int:
        return len(self._acked)

    def acked_steps(self) -> dict[str, int]:
        with self._lock:
            return dict(self._acked)

    def durable_marker(self) -> DurableMarker | None:
        return self._marker

    def unack(self, sample_ids: Iterable[str]) -> int:
        with self._lock:
            back = [s for s in sample_ids if self._acked.pop(s, None) is not None]
            self._return_to_pending(back)
            if self._marker is not None:
                self._marker = DurableMarker(
                    self._marker.global_step, self._marker.optimizer_durable, len(self._acked)
                )
            return len(back)

    def claim_named(
        self, trainer_id: str, sample_ids: Sequence[str], lease_timeout_s: float
    ) -> list[SampleRef]:
        with self._lock:
            self._heartbeat_and_reap(trainer_id, lease_timeout_s)
            self._lease(trainer_id, [s for s in sample_ids if s in self._pending])
            return [self._refs[s] for s in sample_ids if self._owner.get(s) == trainer_id]

    def _heartbeat_and_reap(self, trainer_id: str, lease_timeout_s: float) -> None:
        now = time.monotonic()
        self._heartbeat[trainer_id] = now + lease_timeout_s
        dead = {h for h, expiry in self._heartbeat.items() if expiry < now}
        if dead:
            self._return_to_pending([s for s, h in self._owner.items() if h in dead])
            for h in dead:
                del self._heartbeat[h]

    def _lease(self, trainer_id: str, sample_ids: list[str]) -> list[SampleRef]:
        for sid in sample_ids:
            self._pending.remove(sid)
            self._owner[sid] = trainer_id
        return [self._refs[s] for s in sample_ids]

    def clear_leases(self, trainer_id: str) -> int:
        with self._lock:
            mine = [s for s, h in self._owner.items() if h == trainer_id]
            self._return_to_pending(mine)
            self._heartbeat.pop(trainer_id, None)
            return len(mine)

    def _return_to_pending(self, sample_ids: Iterable[str]) -> None:
        for sid in sample_ids:
            self._owner.pop(sid, None)
            self._pending.add(sid)

    def pending_count(self) -> int:
        return len(self._pending)

    def leased_count(self) -> int:
        return len(self._owner)
