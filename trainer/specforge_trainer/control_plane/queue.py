"""SampleRefQueue: the in-process, metadata-only queue between the control plane and the loader.

Leases by name (a trainer rank follows a deterministic schedule of sample ids), idempotent ``put`` (a
ref already pending or in flight is not queued twice) and ``ack``. What it does not do, on purpose:
leases do not expire here (a shared store's leases lapse with their holder's heartbeat,
:mod:`.stores.base`, and a process-local queue dies with its only consumer), and producers are held
back by their own bound of unacked refs (:mod:`specforge_trainer.features.streaming`), not by this queue.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from .records import SampleRef


class SampleRefQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: OrderedDict[str, SampleRef] = OrderedDict()
        self._in_flight: dict[str, SampleRef] = {}

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
                added += 1
            if added:
                self._cond.notify_all()
        return added

    # -- consumer side -------------------------------------------------------------------------
    def get_named(self, sample_ids: Sequence[str], timeout_s: float = 0.0) -> list[SampleRef]:
        """Lease the named refs, in the order asked, waiting up to ``timeout_s`` for all of them.

        Refs already in flight are answered again, so a caller may repeat the call for a partial
        answer. This is how a trainer follows a deterministic schedule whatever order refs arrive in.
        """
        wanted = list(dict.fromkeys(sample_ids))
        with self._cond:
            self._cond.wait_for(
                lambda: all(s in self._pending or s in self._in_flight for s in wanted), timeout_s
            )
            out = []
            for sid in wanted:
                ref = self._pending.pop(sid, None)
                if ref is not None:
                    self._in_flight[sid] = ref
                    out.append(ref)
                elif sid in self._in_flight:
                    out.append(self._in_flight[sid])
            return out

    def ack(self, sample_ids: Iterable[str]) -> int:
        """Finish (or forget) refs, pending or in flight; unknown ids are ignored, so acks are idempotent."""
        with self._cond:
            gone = sum(
                self._in_flight.pop(sid, None) is not None or self._pending.pop(sid, None) is not None
                for sid in sample_ids
            )
            if gone:
                self._cond.notify_all()
            return gone

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
