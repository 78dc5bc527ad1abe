"""One contract, four stores. NoOp's differences are asserted, not skipped."""

from __future__ import annotations

import pytest
from _support.control_plane import STORE_KINDS, make_ref
from specforge_trainer.control_plane import DurableMarker, UnknownSampleError

pytestmark = pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)


def ids(refs):
    return [r.sample_id for r in refs]


def sids(*indices):
    return [f"s{i:05d}" for i in indices]


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
    with pytest.raises(UnknownSampleError) as refused:
        store.record_train_ack(["s00001", "never"], global_step=2, optimizer_durable=True)
    message = str(refused.value).replace("never committed", "")
    assert "never" in message and "s00001" not in message, "names the unknown id, and only it"
    assert not store.is_acked("s00001")
    assert store.durable_marker() == DurableMarker(1, True, 1)


def test_an_ack_of_more_ids_than_one_statement_holds(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(1200)])
    store.record_train_ack(sids(*range(1200)), global_step=1, optimizer_durable=True)
    if store_factory.kind != "noop":
        assert store.durable_marker() == DurableMarker(1, True, 1200)


def test_leases_are_exclusive_and_acked_refs_never_come_back(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(6)])
    first = store.claim_named("t0", sids(0, 1, 2, 3), lease_timeout_s=30)
    if store_factory.kind == "noop":
        assert first == [] and not store.shares_leases
        assert (store.pending_count(), store.leased_count()) == (0, 0)
        return
    assert ids(first) == sids(0, 1, 2, 3)
    second = store.claim_named("t1", sids(2, 3, 4, 5), lease_timeout_s=30)
    assert ids(second) == sids(4, 5)  # a live holder's refs are not handed to another
    assert (store.pending_count(), store.leased_count()) == (0, 6)
    store.record_train_ack(ids(first), global_step=1, optimizer_durable=True)
    assert store.leased_count() == 2
    assert store.claim_named("t2", sids(*range(6)), lease_timeout_s=30) == []


def test_a_dead_holders_leases_come_back(store_factory, lease_clock):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in (3, 0, 2, 1)])
    if store_factory.kind == "noop":
        assert store.claim_named("dies", sids(3, 0), lease_timeout_s=1.0) == []
        return
    assert ids(store.claim_named("dies", sids(3, 0), lease_timeout_s=1.0)) == sids(3, 0)
    assert ids(store.claim_named("lives", sids(3, 0, 2), lease_timeout_s=30)) == sids(2)
    lease_clock.advance(1.2)
    # "dies" has not called since: its refs are pending again
    assert ids(store.claim_named("lives", sids(3, 0, 1), lease_timeout_s=30)) == sids(3, 0, 1)


def test_a_lease_lasts_its_whole_timeout_after_the_holders_last_call(store_factory, lease_clock):
    """Held up to and including ``lease_timeout_s`` after the holder's last call; back to pending after."""
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(2)])
    # The virtual clock lands on the dot. Real time (Redis) is checked well inside the lease (a stall of up
    # to 3 s on a loaded machine cannot expire it early) and past it (a late check is only further past).
    lease = 4.0 if lease_clock.real else 2.0
    if store_factory.kind == "noop":
        assert store.claim_named("slow", sids(0), lease_timeout_s=lease) == []
        return
    assert ids(store.claim_named("slow", sids(0), lease_timeout_s=lease)) == sids(0)
    lease_clock.advance(1.0 if lease_clock.real else lease)
    assert ids(store.claim_named("other", sids(0, 1), lease_timeout_s=30)) == sids(1)
    lease_clock.advance(lease if lease_clock.real else 0.001)
    assert ids(store.claim_named("other", sids(0), lease_timeout_s=30)) == sids(0)


@pytest.mark.parametrize("beat", ["claim_named", "ack_and_claim"])
def test_a_named_claim_of_nothing_is_still_a_heartbeat(store_factory, beat, lease_clock):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(2)])
    # Real time (Redis): beats 1 s apart against a 4 s lease, so a 3 s stall of a loaded machine between
    # two beats still keeps it; five beats take the holder past the lease timeout all the same.
    lease, period, beats = (4.0, 1.0, 5) if lease_clock.real else (2.0, 0.8, 3)

    def heartbeat():
        if beat == "claim_named":
            return store.claim_named("slow", [], lease_timeout_s=lease)
        return store.ack_and_claim(
            "slow", [], global_step=1, optimizer_durable=False, claim=[], lease_timeout_s=lease
        )

    if store_factory.kind == "noop":
        assert heartbeat() == []
        return
    store.claim_named("slow", ["s00000"], lease_timeout_s=lease)
    for _ in range(beats):  # past the lease timeout in all: only the heartbeats keep the lease
        lease_clock.advance(period)
        assert heartbeat() == []
    assert period * beats > lease
    assert ids(store.claim_named("other", sids(0, 1), lease_timeout_s=30)) == sids(1)


def test_clear_returns_a_holders_refs_at_once(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(5)])
    store.claim_named("t0", sids(*range(5)), lease_timeout_s=30)
    if store_factory.kind == "noop":
        assert (store.pending_count(), store.leased_count(), store.clear_leases("t0")) == (0, 0, 0)
        return
    assert store.claim_named("t1", sids(0), lease_timeout_s=30) == []
    assert store.clear_leases("someone-else") == 0
    assert store.clear_leases("t0") == 5  # its previous incarnation's leases, without a lease timeout
    assert (store.pending_count(), store.leased_count()) == (5, 0)
    assert ids(store.claim_named("t1", sids(*range(5)), lease_timeout_s=30)) == sids(*range(5))


def test_unack_returns_acked_refs_to_pending(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(3)])
    store.record_train_ack(["s00000", "s00001"], global_step=5, optimizer_durable=True)
    assert store.unack(["s00001", "s00002"]) == (0 if store_factory.kind == "noop" else 1)
    if store_factory.kind != "noop":
        assert store.acked_steps() == {"s00000": 5}
        assert store.durable_marker() == DurableMarker(5, True, 1)  # the step stays, the count follows
        assert ids(store.claim_named("t", sids(0, 1, 2), lease_timeout_s=30)) == sids(1, 2)


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
    assert [r.run_id for r in b.claim_named("t", sids(0, 1, 2), lease_timeout_s=30)] == ["run-b", "run-b"]


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
    first = store.claim_named("t0", sids(0, 1), lease_timeout_s=30)
    nxt = store.ack_and_claim(
        "t0", ids(first), global_step=1, optimizer_durable=True, claim=sids(2, 3), lease_timeout_s=30
    )
    by_name = store.ack_and_claim(
        "t0",
        ids(nxt),
        global_step=2,
        optimizer_durable=False,
        claim=["s00005", "s00004"],
        lease_timeout_s=30,
    )
    if store_factory.kind == "noop":
        assert first == nxt == by_name == []
        return
    assert ids(nxt) == ["s00002", "s00003"]
    assert [r.sample_id for r in by_name] == ["s00005", "s00004"]
    assert store.acked_count() == 4 and store.durable_marker() == DurableMarker(2, False, 4)
    assert (store.pending_count(), store.leased_count()) == (0, 2)


def test_ack_and_claim_with_a_bad_ack_leaves_nothing_claimed(store_factory):
    store = store_factory()
    store.commit_samples([make_ref(i) for i in range(4)])
    if store_factory.kind == "noop":
        return
    with pytest.raises(UnknownSampleError, match="never"):
        store.ack_and_claim(
            "t0",
            ["s00000", "never"],
            global_step=1,
            optimizer_durable=True,
            claim=sids(2, 3),
            lease_timeout_s=30,
        )
    assert (store.acked_count(), store.pending_count(), store.leased_count()) == (0, 4, 0)
    assert ids(store.claim_named("t1", sids(2, 3), lease_timeout_s=30)) == sids(2, 3)  # not t0's
