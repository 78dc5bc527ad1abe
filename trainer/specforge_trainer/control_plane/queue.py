"""SampleRefQueue: the in-process, metadata-only queue between the control plane and the loader.

FIFO leases with optional per-ref lease expiry, idempotent ``put`` (a ref already pending or in
flight is not queued twice), ``ack``/``fail``, and a deterministic ``(index, n)`` partition on a
stable hash of the sample id so consumers can reshard. Backpressure is opt-in (:mod:`.backpressure`).
"""

from __future__ import annotations

import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from .backpressure import Backpressure
from .records import SampleRef


def shard_of(sample_id: str, num_shards: int) -> int:
    """The shard a sample belongs to among ``num_shards``: stable across processes and runs."""
    return zlib.crc32(sample_id.encode()) % num_shards


class SampleRefQueue:
    def __init__(
        self, *, lease_timeout_s: float | None = None, backpressure: Backpressure | None = None
    ) -> None:
        if lease_timeout_s is not None and lease_timeout_s <= 0:
            raise ValueError(f"lease_timeout_s must be > 0 or None, got {lease_timeout_s}")
        self.lease_timeout_s = lease_timeout_s
        self.backpressure = backpressure
        self._cond = threading.Condition()
        self._pending: OrderedDict[str, SampleRef] = OrderedDict()
        self._in_flight: dict[str, tuple[SampleRef, float | None]] = {}
        self._resident_bytes = 0
        self.failed_count = 0

    # -- producer side -------------------------------------------------------------------------
    def put(self, ref: SampleRef) -> bool:
        return self.put_many([ref]) == 1

    def put_many(self, refs: Iterable[SampleRef]) -> int:
        added = 0
        with self._cond:
            for ref in refs:
                if ref.sample_id in self._pending or ref.sample_id in self._in_flight:
                    continue
                self._pending[ref.sample_id] = ref
                self._resident_bytes += ref.estimated_bytes
                added += 1
            if added:
                self._observe()
                self._cond.notify_all()
        return added

    def accepting(self) -> bool:
        """False while backpressure holds producers back (always True without backpressure)."""
        with self._cond:
            return self._observe()

    def wait_accepting(self, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(self._observe, timeout_s)

    # -- consumer side -------------------------------------------------------------------------
    def get(
        self, max_refs: int, timeout_s: float = 0.0, *, shard: tuple[int, int] | None = None
    ) -> list[SampleRef]:
        """Lease up to ``max_refs`` refs in FIFO order, waiting up to ``timeout_s`` for the first."""
        if max_refs < 1:
            raise ValueError(f"max_refs must be >= 1, got {max_refs}")
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ValueError(f"shard must be (index, n) with 0 <= index < n, got {shard}")
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                self._reclaim_expired()
                candidates = self._head(max_refs, shard)
                if candidates:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._cond.wait(self._wait_slice(remaining))
            if self.backpressure is not None:
                candidates = candidates[: self.backpressure.grant([r.estimated_bytes for r in candidates])]
            expiry = None if self.lease_timeout_s is None else time.monotonic() + self.lease_timeout_s
            for ref in candidates:
                del self._pending[ref.sample_id]
                self._in_flight[ref.sample_id] = (ref, expiry)
            return candidates

    def get_named(self, sample_ids: Sequence[str], timeout_s: float = 0.0) -> list[SampleRef]:
        """Lease the named refs, in the order asked, waiting up to ``timeout_s`` for all of them.

        Refs already in flight are answered again, so a caller may repeat the call for a partial
        answer. This is how a trainer follows a deterministic schedule whatever order refs arrive in.
        """
        wanted = list(dict.fromkeys(sample_ids))
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                self._reclaim_expired()
                if all(s in self._pending or s in self._in_flight for s in wanted):
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(self._wait_slice(remaining))
            expiry = None if self.lease_timeout_s is None else time.monotonic() + self.lease_timeout_s
            out = []
            for sid in wanted:
                ref = self._pending.pop(sid, None)
                if ref is not None:
                    self._in_flight[sid] = (ref, expiry)
                    out.append(ref)
                elif sid in self._in_flight:
                    out.append(self._in_flight[sid][0])
            return out

    def _head(self, n: int, shard: tuple[int, int] | None) -> list[SampleRef]:
        out: list[SampleRef] = []
        for ref in self._pending.values():
            if len(out) == n:
                break
            if shard is None or shard_of(ref.sample_id, shard[1]) == shard[0]:
                out.append(ref)
        return out

    def _wait_slice(self, remaining: float) -> float:
        if self.lease_timeout_s is None or not self._in_flight:
            return remaining
        return min(remaining, self.lease_timeout_s)  # wake to reclaim leases that expire meanwhile

    def ack(self, sample_ids: Iterable[str]) -> int:
        """Finish (or forget) refs, pending or in flight; unknown ids are ignored, so acks are idempotent."""
        return self._forget(sample_ids)

    def fail(self, sample_ids: Sequence[str], *, retryable: bool = True) -> int:
        """Give refs back: retryable ones to the head of the queue in their order, the rest dropped."""
        with self._cond:
            back = [self._in_flight.pop(sid)[0] for sid in sample_ids if sid in self._in_flight]
            if retryable:
                self._requeue_front(back)
            else:
                self.failed_count += len(back)
                self._resident_bytes -= sum(r.estimated_bytes for r in back)
                self._observe()
            self._cond.notify_all()
            return len(back)

    def _forget(self, sample_ids: Iterable[str]) -> int:
        with self._cond:
            gone = 0
            for sid in sample_ids:
                leased = self._in_flight.pop(sid, None)
                ref = leased[0] if leased else self._pending.pop(sid, None)
                if ref is not None:
                    self._resident_bytes -= ref.estimated_bytes
                    gone += 1
            if gone:
                self._observe()
                self._cond.notify_all()
            return gone

    def reclaim_expired(self) -> int:
        with self._cond:
            n = self._reclaim_expired()
            if n:
                self._cond.notify_all()
            return n

    def _reclaim_expired(self) -> int:
        if self.lease_timeout_s is None or not self._in_flight:
            return 0
        now = time.monotonic()
        expired = [ref for ref, expiry in self._in_flight.values() if expiry is not None and expiry <= now]
        for ref in expired:
            del self._in_flight[ref.sample_id]
        self._requeue_front(expired)
        return len(expired)

    def _requeue_front(self, refs: list[SampleRef]) -> None:
        for ref in reversed(refs):
            self._pending[ref.sample_id] = ref
            self._pending.move_to_end(ref.sample_id, last=False)

    def _observe(self) -> bool:
        return True if self.backpressure is None else self.backpressure.observe(self._resident_bytes)

    # -- introspection ---------------------------------------------------------------------------
    def depth(self) -> int:
        return len(self._pending)

    def in_flight(self) -> int:
        return len(self._in_flight)

    def missing(self, sample_ids: Iterable[str]) -> list[str]:
        """The ids, in order and without repeats, that are neither pending nor in flight here."""
        with self._cond:
            return [
                s for s in dict.fromkeys(sample_ids) if s not in self._pending and s not in self._in_flight
            ]

    @property
    def resident_bytes(self) -> int:
        return self._resident_bytes
