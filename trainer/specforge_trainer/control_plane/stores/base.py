"""The metadata-store contract: the durability seam for recovery-critical control-plane state.

A store holds, per run: committed refs (deduplicated on ``sample_id``, in commit order), which of
them are acked and at which global step, the optimizer-durable marker, and — for stores shared by
several processes — who holds which ref on lease. An ack and its marker are one atomic write.

Refs are leased by name only: every trainer rank follows a deterministic schedule of sample ids, so
"the next n pending refs" is a question the product never asks.

Leases are tied to the liveness of their holder, not to each ref: every claim or ack from a trainer
renews its heartbeat, and when a holder's heartbeat is older than its lease timeout, every ref it
holds goes back to the pending set. A slow-but-alive trainer therefore keeps its
refs however long a step takes, while a killed one loses them one lease timeout after its last call.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from specforge_api.pod_contract import STORE_LOST_REASON

from ..records import SampleRef


class StoreError(RuntimeError):
    """Base class of metadata-store failures."""


class StoreUnavailableError(StoreError):
    """The store did not answer in time (down, unreachable, or a wrong address)."""


class StoreAuthError(StoreError):
    """The store refused our credentials."""


class StoreConfigError(StoreError):
    """The store is reachable but configured so that it cannot keep our guarantees."""


class MetadataStoreLost(StoreError):
    """The store has no record of a run whose checkpoint says samples were acked durably: its data is
    gone, and which samples were trained cannot be told any more. Restarting would not bring it back."""

    def __str__(self) -> str:  # the operator fails the run, instead of restarting it, on this word
        return f"{STORE_LOST_REASON}: {self.args[0]}"


class UnknownSampleError(StoreError, KeyError):
    """An ack or lease operation named sample ids that were never committed."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class DurableMarker:
    """What the last durable ack recorded: the optimizer step it belongs to and the acked total."""

    global_step: int
    optimizer_durable: bool
    acked_count: int


class MetadataStore(abc.ABC):
    """Recovery-critical control-plane state for one run (see the module docstring).

    Every method serves the trainer, a producer or a restart, except the ``*_count`` methods (but
    ``pending_count``, which a restart reports): they are what :meth:`DataFlowController.status` shows a
    person inspecting a run from Python, and what the store contract is checked through.
    """

    #: Whether several processes can share this store's pending set and leases.
    shares_leases: bool = True

    # -- commit ------------------------------------------------------------------------------
    @abc.abstractmethod
    def commit_samples(self, refs: Sequence[SampleRef]) -> list[bool]:
        """Commit refs in order; per ref True if new, False if its sample_id was already committed."""

    @abc.abstractmethod
    def is_committed(self, sample_id: str) -> bool: ...

    @abc.abstractmethod
    def get_committed(self, sample_id: str) -> SampleRef | None: ...

    @abc.abstractmethod
    def committed_count(self) -> int: ...

    @abc.abstractmethod
    def all_committed_ids(self) -> list[str]:
        """Committed sample ids in commit order."""

    # -- ack ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def record_train_ack(
        self,
        sample_ids: Sequence[str],
        *,
        global_step: int,
        optimizer_durable: bool,
    ) -> None:
        """Durably mark ``sample_ids`` acked at ``global_step`` and update the marker, atomically.

        Idempotent. Acking an id that was never committed raises :class:`UnknownSampleError` and
        writes nothing. The marker's ``global_step`` never goes backwards.
        """

    @abc.abstractmethod
    def is_acked(self, sample_id: str) -> bool: ...

    @abc.abstractmethod
    def acked_count(self) -> int: ...

    @abc.abstractmethod
    def acked_steps(self) -> dict[str, int]:
        """Every acked sample id with the global step its ack belongs to."""

    @abc.abstractmethod
    def durable_marker(self) -> DurableMarker | None: ...

    @abc.abstractmethod
    def unack(self, sample_ids: Iterable[str]) -> int:
        """Return acked ids to pending (a restart that resumes from a checkpoint older than the ack)."""

    # -- shared leasing --------------------------------------------------------------------------
    @abc.abstractmethod
    def claim_named(
        self, trainer_id: str, sample_ids: Sequence[str], lease_timeout_s: float
    ) -> list[SampleRef]:
        """Renew ``trainer_id``'s heartbeat, return dead holders' refs to pending, then lease the named
        refs: those pending are leased; those ``trainer_id`` already holds are answered again; the rest
        (not committed yet, acked, or a live holder's) are not. A claim of no ids is the heartbeat alone."""

    def ack_and_claim(
        self,
        trainer_id: str,
        sample_ids: Sequence[str],
        *,
        global_step: int,
        optimizer_durable: bool,
        claim: Sequence[str],
        lease_timeout_s: float,
    ) -> list[SampleRef]:
        """:meth:`record_train_ack`, then :meth:`claim_named` of ``claim``: the optimizer boundary and
        the next step's lease.

        A store behind a server overrides this to pay one round trip (and one fsync) for both. When
        the ack fails, nothing stays claimed.
        """
        self.record_train_ack(sample_ids, global_step=global_step, optimizer_durable=optimizer_durable)
        return self.claim_named(trainer_id, claim, lease_timeout_s)

    @abc.abstractmethod
    def clear_leases(self, trainer_id: str) -> int:
        """Return everything ``trainer_id`` holds to pending (its previous incarnation's leases)."""

    @abc.abstractmethod
    def pending_count(self) -> int: ...

    @abc.abstractmethod
    def leased_count(self) -> int: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store's data is untouched."""

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
