"""One contract, four stores. NoOp's differences are asserted, not skipped."""

from __future__ import annotations

import pytest
from _support.control_plane import STORE_KINDS, make_ref
from specforge_trainer.control_plane import DurableMarker, UnknownSampleError

pytestmark = pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)


def test_commit_dedups_on_sample_id(store_factory):
    store = store_factory()
    refs = [make_ref(i) for i in range(5)]
    assert store.commit_samples(refs) == [True] * 5
    again = store.commit_samples([refs[1], make_ref(5), refs[3]])
    if store_factory.kind == "noop":
        assert again == [True, True, True]  # no dedup: retains nothing
        assert store.committed_count() == 0
        assert store.all_committed_ids() == []
        assert not store.is_committed("s00001")
        assert store.get_committed("s00001") is None
    else:
        assert again == [False, True, False]
        assert store.committed_count() == 6
        assert store.all_committed_ids() == [f"s{i:05d}" for i in range(6)]
        assert store.is_committed("s00001") and not store.is_committed("nope")
        assert store.get_committed("s00002") == refs[2]
        assert store.get_committed("nope") is None


def test_single_commit_answers_new_then_duplicate(store_factory):
    store = store_factory()
    assert store.commit_sample(make_ref(0)) is True
    assert store.commit_sample(make_ref(0)) is (store_factory.kind == "noop")


def test_ack_records_ids_step_and_marker_together(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(4)])
    store.record_train_ack(["s00000", "s00001"], global_step=1, optimizer_durable=True)
    if store_factory.kind == "noop":
        assert store.durable_marker() is None
        assert store.acked_count() == 0 and not store.is_acked("s00000")
        return
    assert store.durable_marker() == DurableMarker(global_step=1, optimizer_durable=True, acked_count=2)
    assert store.is_acked("s00000") and not store.is_acked("s00002")
    assert store.acked_steps() == {"s00000": 1, "s00001": 1}
    # idempotent: the same ack again changes nothing
    store.record_train_ack(["s00000", "s00001"], global_step=1, optimizer_durable=True)
    assert store.durable_marker() == DurableMarker(1, True, 2)
    store.record_train_ack(["s00002"], global_step=2, optimizer_durable=False)
    assert store.durable_marker() == DurableMarker(2, False, 3)
    # a late replay of an older step never moves the marker backwards nor re-steps an ack
    store.record_train_ack(["s00000"], global_step=0, optimizer_durable=True)
    assert store.durable_marker().global_step == 2
    assert store.acked_steps()["s00000"] == 1


def test_ack_of_uncommitted_ids_writes_nothing(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(0), make_ref(1)])
    store.record_train_ack(["s00000"], global_step=1, optimizer_durable=True)
    if store_factory.kind == "noop":
        store.record_train_ack(["never"], global_step=2, optimizer_durable=True)  # dropped, no error
        return
    with pytest.raises(UnknownSampleError, match="never"):
        store.record_train_ack(["s00001", "never"], global_step=2, optimizer_durable=True)
    assert not store.is_acked("s00001")
    assert store.durable_marker() == DurableMarker(1, True, 1)


def test_leases_are_fifo_exclusive_and_acked_refs_never_come_back(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(6)])
    first = store.claim_leases("t0", 4, lease_timeout_s=30)
    if store_factory.kind == "noop":
        assert first == [] and not store.shares_leases
        assert (store.pending_count(), store.leased_count()) == (0, 0)
        return
    assert [r.sample_id for r in first] == ["s00000", "s00001", "s00002", "s00003"]
    second = store.claim_leases("t1", 4, lease_timeout_s=30)
    assert [r.sample_id for r in second] == ["s00004", "s00005"]
    assert (store.pending_count(), store.leased_count()) == (0, 6)
    store.record_train_ack([r.sample_id for r in first], global_step=1, optimizer_durable=True)
    assert store.leased_count() == 2
    assert store.claim_leases("t2", 10, lease_timeout_s=30) == []


def test_a_dead_holders_leases_come_back_in_commit_order(store_factory, lease_clock):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in (3, 0, 2, 1)])  # commit order is not the ids' order
    if store_factory.kind == "noop":
        assert store.claim_leases("dies", 2, lease_timeout_s=1.0) == []
        return
    assert len(store.claim_leases("dies", 2, lease_timeout_s=1.0)) == 2
    assert [r.sample_id for r in store.claim_leases("lives", 1, lease_timeout_s=30)] == ["s00002"]
    lease_clock.advance(1.2)
    # "dies" has not called since: its two refs return ahead of s00001, in commit order
    assert [r.sample_id for r in store.claim_leases("lives", 10, lease_timeout_s=30)] == [
        "s00003",
        "s00000",
        "s00001",
    ]


def test_a_lease_lasts_its_whole_timeout_after_the_holders_last_call(store_factory, lease_clock):
    """Held up to and including ``lease_timeout_s`` after the holder's last call; back to pending after."""
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(2)])
    if store_factory.kind == "noop":
        assert store.claim_leases("slow", 1, lease_timeout_s=2.0) == []
        return
    assert [r.sample_id for r in store.claim_leases("slow", 1, lease_timeout_s=2.0)] == ["s00000"]
    # The virtual clock lands on the dot; real time (Redis) only well inside and well past it.
    lease_clock.advance(1.0 if lease_clock.real else 2.0)
    assert [r.sample_id for r in store.claim_leases("other", 10, lease_timeout_s=30)] == ["s00001"]
    lease_clock.advance(1.5 if lease_clock.real else 0.001)
    assert [r.sample_id for r in store.claim_leases("other", 10, lease_timeout_s=30)] == ["s00000"]


def test_a_live_holder_keeps_its_leases_however_long_a_step_takes(store_factory, lease_clock):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(3)])
    if store_factory.kind == "noop":
        assert store.claim_leases("slow", 2, lease_timeout_s=2.0) == []
        return
    store.claim_leases("slow", 2, lease_timeout_s=2.0)
    for _ in range(3):  # 2.4 s in all, past the lease timeout: only the heartbeats keep the leases
        lease_clock.advance(0.8)
        store.claim_leases("slow", 0, lease_timeout_s=2.0)  # heartbeat
    assert [r.sample_id for r in store.claim_leases("other", 10, lease_timeout_s=30)] == ["s00002"]


@pytest.mark.parametrize("beat", ["claim_named", "ack_and_claim"])
def test_a_named_claim_of_nothing_is_still_a_heartbeat(store_factory, beat, lease_clock):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(2)])

    def heartbeat():
        if beat == "claim_named":
            return store.claim_named("slow", [], lease_timeout_s=2.0)
        return store.ack_and_claim(
            "slow", [], global_step=1, optimizer_durable=False, claim=[], lease_timeout_s=2.0
        )

    if store_factory.kind == "noop":
        assert heartbeat() == []
        return
    store.claim_named("slow", ["s00000"], lease_timeout_s=2.0)
    for _ in range(3):
        lease_clock.advance(0.8)
        assert heartbeat() == []
    assert [r.sample_id for r in store.claim_leases("other", 10, lease_timeout_s=30)] == ["s00001"]


def test_release_and_clear_return_refs(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(5)])
    store.claim_leases("t0", 5, lease_timeout_s=30)
    if store_factory.kind == "noop":
        store.release_leases("t0", ["s00003"], retryable=False)
        assert (
            store.pending_count(),
            store.leased_count(),
            store.failed_count(),
            store.clear_leases("t0"),
        ) == (0, 0, 0, 0)
        return
    store.release_leases("t0", ["s00003"], retryable=True)
    store.release_leases("t0", ["s00004"], retryable=False)
    store.release_leases("someone-else", ["s00000"], retryable=True)  # not theirs: ignored
    assert (store.pending_count(), store.leased_count(), store.failed_count()) == (1, 3, 1)
    assert store.clear_leases("t0") == 3
    assert [r.sample_id for r in store.claim_leases("t1", 10, lease_timeout_s=30)] == [
        "s00000", "s00001", "s00002", "s00003",
    ]  # fmt: skip


def test_unack_returns_acked_refs_to_pending(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(3)])
    store.record_train_ack(["s00000", "s00001"], global_step=5, optimizer_durable=True)
    assert store.unack(["s00001", "s00002"]) == (0 if store_factory.kind == "noop" else 1)
    if store_factory.kind != "noop":
        assert store.acked_steps() == {"s00000": 5}
        assert store.durable_marker().acked_count == 1
        assert [r.sample_id for r in store.claim_leases("t", 5, lease_timeout_s=30)] == ["s00001", "s00002"]


def test_runs_sharing_a_backend_do_not_see_each_other(store_factory):
    a, b = store_factory("run-a"), store_factory("run-b")
    a.commit_samples([make_ref(i, "run-a") for i in range(3)])
    b.commit_samples([make_ref(i, "run-b") for i in range(2)])
    if store_factory.kind == "noop":
        assert a.committed_count() == b.committed_count() == 0
        return
    if store_factory.kind == "memory":  # one object per run: isolated by construction
        assert (a.committed_count(), b.committed_count()) == (3, 2)
        return
    assert (a.committed_count(), b.committed_count()) == (3, 2)
    a.record_train_ack(["s00000"], global_step=1, optimizer_durable=True)
    assert not b.is_acked("s00000") and b.durable_marker() is None
    assert [r.run_id for r in b.claim_leases("t", 10, lease_timeout_s=30)] == ["run-b", "run-b"]


def test_named_claims_follow_a_schedule_whatever_the_commit_order(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in (3, 1, 4)])
    got = store.claim_named("t0", ["s00004", "s00002", "s00001"], lease_timeout_s=30)
    if store_factory.kind == "noop":
        assert got == []
        return
    assert [r.sample_id for r in got] == ["s00004", "s00001"]  # s00002 is not committed yet
    assert store.claim_named("t1", ["s00004"], lease_timeout_s=30) == []  # a live holder's
    again = store.claim_named("t0", ["s00001", "s00004", "s00003"], lease_timeout_s=30)
    assert [r.sample_id for r in again] == ["s00001", "s00004", "s00003"]  # repeats are harmless
    store.record_train_ack(["s00003"], global_step=1, optimizer_durable=True)
    assert store.claim_named("t0", ["s00003"], lease_timeout_s=30) == []  # acked: never again
    assert store.leased_count() == 2


def test_ack_and_claim_ends_one_step_and_leases_the_next(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(6)])
    first = store.claim_leases("t0", 2, lease_timeout_s=30)
    by_count = store.ack_and_claim(
        "t0", [r.sample_id for r in first], global_step=1, optimizer_durable=True, claim=2, lease_timeout_s=30
    )
    by_name = store.ack_and_claim(
        "t0",
        [r.sample_id for r in by_count],
        global_step=2,
        optimizer_durable=False,
        claim=["s00005", "s00004"],
        lease_timeout_s=30,
    )
    if store_factory.kind == "noop":
        assert first == by_count == by_name == []
        return
    assert [r.sample_id for r in by_count] == ["s00002", "s00003"]
    assert [r.sample_id for r in by_name] == ["s00005", "s00004"]
    assert store.acked_count() == 4 and store.durable_marker() == DurableMarker(2, False, 4)
    assert (store.pending_count(), store.leased_count()) == (0, 2)


def test_ack_and_claim_with_a_bad_ack_leaves_nothing_claimed(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(4)])
    if store_factory.kind == "noop":
        return
    for claim in (2, ["s00002", "s00003"]):
        with pytest.raises(UnknownSampleError, match="never"):
            store.ack_and_claim(
                "t0",
                ["s00000", "never"],
                global_step=1,
                optimizer_durable=True,
                claim=claim,
                lease_timeout_s=30,
            )
        assert (store.acked_count(), store.pending_count(), store.leased_count()) == (0, 4, 0)
