"""DataFlowController: the passive, metadata-only control plane between producers and trainer ranks.

It never touches tensors (every record it accepts passes :func:`assert_no_tensors`) and takes the
same path in every mode; only the store behind it differs:

* a store that does not share leases (:class:`NoOpMetadataStore`): fresh refs go straight into the
  in-process :class:`SampleRefQueue` and leasing happens there;
* a shared store (in-memory, SQLite, Redis): the store's pending set *is* the queue of record, so
  producers in other processes feed it; a trainer claims leases from the store into its local queue
  and leases from there. A ref leased by one live trainer is never handed to another.

Acks write the durable record first and release the ref from the queue second, so a crash in
between can only repeat an (idempotent) ack, never lose one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .queue import SampleRefQueue
from .records import SampleRef, assert_no_tensors
from .stores.base import MetadataStore, MetadataStoreLost
from .stores.memory import InMemoryMetadataStore

DEFAULT_LEASE_TIMEOUT_S = 60.0
log = logging.getLogger(__name__)


class FeatureStore(Protocol):
    def release(self, ref: SampleRef) -> None:
        """Delete the features of a durably acked ref."""


@dataclass(frozen=True)
class ControlPlaneStatus:
    committed: int
    acked: int
    backlog: int  # committed - acked
    queue_depth: int
    in_flight: int
    leased: int
    durable_global_step: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReconcileReport:
    requeued: int = 0  # stale leases of this trainer's previous incarnation, back to pending
    unacked: int = 0  # acks newer than the checkpoint resumed from, back to pending
    released: int = 0  # acked refs whose features were released
    pending: int = 0  # committed, not acked, ready to lease


class DataFlowController:
    def __init__(
        self,
        run_id: str,
        *,
        metadata_store: MetadataStore | None = None,
        lease_timeout_s: float = DEFAULT_LEASE_TIMEOUT_S,
        poll_interval_s: float = 0.02,
    ) -> None:
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
        self.run_id = run_id
        self.store: MetadataStore = metadata_store if metadata_store is not None else InMemoryMetadataStore()
        self.queue = SampleRefQueue()
        self.lease_timeout_s = lease_timeout_s
        self.poll_interval_s = poll_interval_s
        self._last_beat: dict[str, float] = {}  # trainer id → when the store last renewed its leases

    # -- producers ---------------------------------------------------------------------------
    def commit_samples(self, worker_id: str, refs: Iterable[SampleRef]) -> list[SampleRef]:
        """Commit refs through the store (dedup); the fresh ones become leasable and are returned."""
        refs = list(refs)
        for ref in refs:
            self._check(ref)
        fresh = [ref for ref, new in zip(refs, self.store.commit_samples(refs), strict=True) if new]
        if not self.store.shares_leases:
            self.queue.put_many(fresh)
        return fresh

    def enqueue_offline_refs(self, refs: Iterable[SampleRef]) -> list[SampleRef]:
        """Precomputed refs take the producers' path, so the trainer has no online/offline branch."""
        return self.commit_samples("offline", refs)

    def _check(self, ref: SampleRef) -> None:
        if not isinstance(ref, SampleRef):
            raise TypeError(f"the control plane accepts SampleRef records, got {type(ref).__name__}")
        assert_no_tensors(ref)
        if ref.run_id != self.run_id:
            raise ValueError(f"ref {ref.sample_id!r} belongs to run {ref.run_id!r}, not to {self.run_id!r}")

    # -- trainers ----------------------------------------------------------------------------
    def lease_named_refs(
        self, trainer_id: str, sample_ids: Sequence[str], timeout_s: float = 0.0
    ) -> list[SampleRef]:
        """Lease exactly the named refs (a deterministic schedule), waiting up to ``timeout_s`` for all.

        Answers, in the order asked, those it could lease by the deadline; ask again for the rest
        (refs already leased to this trainer are answered again). Producers may commit in any order.
        """
        if not self.store.shares_leases:
            return self.queue.get_named(sample_ids, timeout_s)
        deadline = time.monotonic() + timeout_s
        while True:
            missing = self.queue.missing(sample_ids)
            if missing or self._beat_due(trainer_id):  # a claim of nothing still renews the heartbeat
                self.queue.put_many(self.store.claim_named(trainer_id, missing, self.lease_timeout_s))
                self._beat(trainer_id)
            refs = self.queue.get_named(sample_ids)
            remaining = deadline - time.monotonic()
            if len(refs) == len(set(sample_ids)) or remaining <= 0:
                return refs
            time.sleep(min(self.poll_interval_s, remaining))

    def ack_train_refs(
        self,
        trainer_id: str,
        sample_ids: Sequence[str],
        *,
        global_step: int,
        optimizer_durable: bool,
        lease_next: Sequence[str] | None = None,
    ) -> None:
        """Durably record the ack, then release the refs from the queue. Idempotent.

        ``lease_next`` — the next step's sample ids — claims them in the same store call as the ack, so a
        step costs one round trip to a server store instead of two; they wait in the local queue for the
        next :meth:`lease_named_refs`.
        """
        ids = list(sample_ids)
        if lease_next is None or not self.store.shares_leases:
            self.store.record_train_ack(ids, global_step=global_step, optimizer_durable=optimizer_durable)
        else:
            leased = self.store.ack_and_claim(
                trainer_id,
                ids,
                global_step=global_step,
                optimizer_durable=optimizer_durable,
                claim=self.queue.missing(lease_next),
                lease_timeout_s=self.lease_timeout_s,
            )
            self._beat(trainer_id)
            self.queue.put_many(leased)
        self.queue.ack(ids)

    @contextlib.contextmanager
    def leases_kept_alive(self, trainer_id: str) -> Iterator[None]:
        """Renew ``trainer_id``'s heartbeat from a background thread while the block runs.

        A step longer than the lease timeout then keeps its refs; a killed process stops renewing and
        its refs return one lease timeout later. Nothing to do for a store that does not share leases.
        """
        if not self.store.shares_leases:
            yield
            return
        stop = threading.Event()
        period = self.lease_timeout_s / 4

        def renew() -> None:
            while not stop.wait(period):
                if not self._beat_due(trainer_id):
                    continue
                try:  # a claim of nothing: only the heartbeat
                    self.store.claim_named(trainer_id, [], self.lease_timeout_s)
                    self._beat(trainer_id)
                except Exception as err:  # the store is down for a while: the next beat or call will tell
                    log.warning("lease heartbeat of %s failed: %s", trainer_id, err)

        thread = threading.Thread(target=renew, name=f"lease-heartbeat-{trainer_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _beat(self, trainer_id: str) -> None:
        self._last_beat[trainer_id] = time.monotonic()

    def _beat_due(self, trainer_id: str) -> bool:
        """A quarter of the lease timeout since the store last heard from ``trainer_id``: renew now, so a
        trainer whose next refs already wait locally still never lets its leases lapse."""
        last = self._last_beat.get(trainer_id)
        return last is None or time.monotonic() - last >= self.lease_timeout_s / 4

    def release_consumed(self, sample_ids: Sequence[str]) -> None:
        """Drop consumed refs from the queue with no durable record (``local_colocated``'s loader)."""
        self.queue.ack(sample_ids)

    # -- recovery ----------------------------------------------------------------------------
    def reconcile_on_restart(
        self,
        feature_store: FeatureStore | None = None,
        *,
        trainer_id: str | None = None,
        resume_global_step: int | None = None,
    ) -> ReconcileReport:
        """Bring the durable state in line with a restarted process.

        Acks newer than ``resume_global_step`` (the checkpoint resumed from) go back to pending —
        their updates died with the process. ``trainer_id``'s stale leases from its previous
        incarnation go back to pending at once instead of after a lease timeout. Features of the
        remaining acked refs are released. Committed-but-unacked refs stay leasable, acked ones are
        never leased again: nothing is lost, nothing acked is retrained. A NoOp store retained
        nothing, so there is nothing to reconcile.
        """
        if not self.store.shares_leases:
            return ReconcileReport()
        acked = self.store.acked_steps()
        unacked = 0
        if resume_global_step is not None:
            newer = [sid for sid, step in acked.items() if step > resume_global_step]
            unacked = self.store.unack(newer)
            for sid in newer:
                del acked[sid]
        requeued = self.store.clear_leases(trainer_id) if trainer_id is not None else 0
        released = 0
        if feature_store is not None:
            for sid in acked:
                ref = self.store.get_committed(sid)
                if ref is not None:
                    feature_store.release(ref)
                    released += 1
        return ReconcileReport(requeued, unacked, released, self.store.pending_count())

    # -- introspection -----------------------------------------------------------------------
    def status(self) -> ControlPlaneStatus:
        committed, acked = self.store.committed_count(), self.store.acked_count()
        marker = self.store.durable_marker()
        return ControlPlaneStatus(
            committed=committed,
            acked=acked,
            backlog=committed - acked,
            queue_depth=self.queue.depth() + self.store.pending_count(),
            in_flight=self.queue.in_flight(),
            leased=self.store.leased_count(),
            durable_global_step=marker.global_step if marker else None,
        )

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint records of the control plane; the durable state itself lives in the store."""
        marker = self.store.durable_marker()
        return {"run_id": self.run_id, "durable_global_step": marker.global_step if marker else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("run_id") != self.run_id:
            raise ValueError(f"checkpoint belongs to run {state.get('run_id')!r}, not to {self.run_id!r}")
        recorded = state.get("durable_global_step")
        if recorded is not None and self.store.durable_marker() is None:
            raise MetadataStoreLost(
                f"the metadata store has no record of run {self.run_id}, but its checkpoint says samples "
                f"were acked durably through step {recorded}: the store lost its data (a managed Redis "
                "without metadataStore.managed.persistence whose pod was replaced?). Which samples were "
                "trained can no longer be told, so the run stops here instead of training some twice"
            )

    def close(self) -> None:
        self.store.close()
