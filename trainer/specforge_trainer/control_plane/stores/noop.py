"""NoOpMetadataStore: the store of ``local_colocated`` runs, which retains nothing.

A colocated single-process run needs no recovery-critical state outside the process, so it should
pay nothing for it. Consequences of retaining nothing, on purpose:

* ``commit_sample`` always answers True: there is **no commit dedup**; the caller enqueues each ref
  exactly once itself.
* Acks are dropped and ``durable_marker()`` is None; the controller's ``status()`` counts
  (committed, acked, backlog, durable step) read 0.
* After a restart there is **no ref reconstruction**: a resumed run re-derives its refs from the
  dataset and the checkpoint, not from the store.
* It does not share leases: leasing stays in the in-process :class:`SampleRefQueue`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..records import SampleRef
from .base import DurableMarker, MetadataStore


class NoOpMetadataStore(MetadataStore):
    shares_leases = False

    def commit_samples(self, refs: Sequence[SampleRef]) -> list[bool]:
        return [True] * len(refs)

    def is_committed(self, sample_id: str) -> bool:
        return False

    def get_committed(self, sample_id: str) -> SampleRef | None:
        return None

    def committed_count(self) -> int:
        return 0

    def all_committed_ids(self) -> list[str]:
        return []

    def record_train_ack(
        self,
        sample_ids: Sequence[str],
        *,
        global_step: int,
        optimizer_durable: bool,
    ) -> None:
        return None

    def is_acked(self, sample_id: str) -> bool:
        return False

    def acked_count(self) -> int:
        return 0

    def acked_steps(self) -> dict[str, int]:
        return {}

    def durable_marker(self) -> DurableMarker | None:
        return None

    def unack(self, sample_ids: Iterable[str]) -> int:
        return 0

    def claim_named(
        self, trainer_id: str, sample_ids: Sequence[str], lease_timeout_s: float
    ) -> list[SampleRef]:
        return []

    def clear_leases(self, trainer_id: str) -> int:
        return 0

    def pending_count(self) -> int:
        return 0

    def leased_count(self) -> int:
        return 0
