"""DataFlowController and resolve_control_plane: one path, the store decides what is retained."""

from __future__ import annotations

import pytest
from _support.control_plane import STORE_KINDS, make_ref
from specforge_trainer.control_plane import (
    DataFlowController,
    DeploymentMode,
    InMemoryMetadataStore,
    MetadataStoreLost,
    NoOpMetadataStore,
    ReconcileReport,
    SQLiteMetadataStore,
    TensorInRefError,
    UnknownSampleError,
    resolve_control_plane,
)


def ids(refs):
    return [r.sample_id for r in refs]


def sids(*indices):
    return [f"s{i:05d}" for i in indices]


@pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)
def test_commit_lease_ack_cycle_is_the_same_in_every_store(store_factory):
    store = store_factory()
    ctl = DataFlowController("run-a", metadata_store=store)
    fresh = ctl.commit_samples("producer-0", [make_ref(i) for i in range(6)])
    assert ids(fresh) == [f"s{i:05d}" for i in range(6)]
    duplicate = ctl.commit_samples("producer-1", [make_ref(2)])
    assert ids(duplicate) == ([] if store.shares_leases else ["s00002"])  # NoOp: no dedup
    leased = ctl.lease_named_refs("rank0", sids(0, 1, 2, 3), timeout_s=1)
    assert ids(leased) == ["s00000", "s00001", "s00002", "s00003"]
    ctl.ack_train_refs("rank0", ids(leased), global_step=1, optimizer_durable=True)
    ctl.ack_train_refs("rank0", ids(leased), global_step=1, optimizer_durable=True)  # idempotent
    status = ctl.status()
    if store_factory.kind == "noop":
        assert (status.committed, status.acked, status.backlog, status.durable_global_step) == (0, 0, 0, None)
        assert status.queue_depth == 2  # no store dedup, but the queue's idempotent put absorbed s00002
    else:
        assert (status.committed, status.acked, status.backlog, status.durable_global_step) == (6, 4, 2, 1)
        assert status.queue_depth == 2 and status.in_flight == 0
    assert ids(ctl.lease_named_refs("rank0", sids(4, 5), timeout_s=1)) == ["s00004", "s00005"]


def test_offline_refs_take_the_commit_path():
    ctl = DataFlowController("run-a", metadata_store=InMemoryMetadataStore())
    assert len(ctl.enqueue_offline_refs([make_ref(0), make_ref(0), make_ref(1)])) == 2
    assert ctl.status().committed == 2


def test_every_record_is_checked_in_every_mode():
    for store in (NoOpMetadataStore(), InMemoryMetadataStore()):
        ctl = DataFlowController("run-a", metadata_store=store)
        bad = make_ref(0)
        import torch

        object.__setattr__(bad, "feature_keys", (torch.zeros(1),))
        with pytest.raises(TensorInRefError):
            ctl.commit_samples("p", [bad])
        with pytest.raises(TypeError, match="SampleRef records"):
            ctl.commit_samples("p", [{"sample_id": "x"}])
        with pytest.raises(ValueError, match="belongs to run 'other'"):
            ctl.commit_samples("p", [make_ref(1, run_id="other")])
        assert ctl.status().queue_depth == 0


class FailingAckStore(InMemoryMetadataStore):
    def record_train_ack(self, *args, **kwargs):
        raise ConnectionError("store down")


def test_ack_is_durable_before_the_queue_releases():
    ctl = DataFlowController("run-a", metadata_store=FailingAckStore())
    ctl.commit_samples("p", [make_ref(0)])
    ctl.lease_named_refs("t", ["s00000"])
    with pytest.raises(ConnectionError):
        ctl.ack_train_refs("t", ["s00000"], global_step=1, optimizer_durable=True)
    assert ctl.queue.in_flight() == 1  # not released: the ack can be retried


def test_ack_of_unknown_ids_is_refused_by_durable_stores():
    ctl = DataFlowController("run-a", metadata_store=InMemoryMetadataStore())
    with pytest.raises(UnknownSampleError):
        ctl.ack_train_refs("t", ["ghost"], global_step=1, optimizer_durable=True)


def test_reconcile_on_restart_requeues_unacked_and_rolls_back_acks_past_the_checkpoint(tmp_path):
    db = tmp_path / "meta.db"
    first = DataFlowController("run-a", metadata_store=SQLiteMetadataStore(db, run_id="run-a"))
    first.commit_samples("p", [make_ref(i) for i in range(6)])
    step1 = first.lease_named_refs("rank0", sids(0, 1))
    first.ack_train_refs("rank0", ids(step1), global_step=1, optimizer_durable=True)
    step2 = first.lease_named_refs("rank0", sids(2, 3))
    first.ack_train_refs("rank0", ids(step2), global_step=2, optimizer_durable=True)
    assert ids(first.lease_named_refs("rank0", sids(4))) == ["s00004"]  # in flight when the process dies
    first.close()

    released = []

    class Features:
        def release(self, ref):
            released.append(ref.sample_id)

    second = DataFlowController("run-a", metadata_store=SQLiteMetadataStore(db, run_id="run-a"))
    report = second.reconcile_on_restart(Features(), trainer_id="rank0", resume_global_step=1)
    assert (report.requeued, report.unacked, report.released, report.pending) == (1, 2, 2, 4)
    assert released == ["s00000", "s00001"]  # only acks the checkpoint covers
    # the checkpoint's acks never come back; the rolled-back ones and the one in flight do
    assert ids(second.lease_named_refs("rank0", sids(*range(6)))) == ["s00002", "s00003", "s00004", "s00005"]


def test_reconcile_touches_only_what_it_is_told_about():
    """No checkpoint to resume from: no ack is rolled back. No trainer id: nobody's leases are cleared."""
    store = InMemoryMetadataStore()
    ctl = DataFlowController("run-a", metadata_store=store)
    ctl.commit_samples("p", [make_ref(i) for i in range(4)])
    ctl.lease_named_refs("rank0", sids(0, 1))
    ctl.ack_train_refs("rank0", sids(0), global_step=1, optimizer_durable=True)
    assert ctl.reconcile_on_restart() == ReconcileReport(requeued=0, unacked=0, released=0, pending=2)
    assert store.leased_count() == 1 and store.acked_steps() == {"s00000": 1}
    assert ctl.reconcile_on_restart(trainer_id="rank0") == ReconcileReport(1, 0, 0, 3)


def test_reconcile_with_a_noop_store_has_nothing_to_do():
    ctl, _ = resolve_control_plane("local_colocated", "r")
    assert ctl.reconcile_on_restart(trainer_id="rank0", resume_global_step=0).pending == 0


def test_resolve_control_plane_makes_the_mode_load_bearing(tmp_path):
    ctl, durable = resolve_control_plane(
        DeploymentMode.LOCAL_COLOCATED, "r", metadata_db_path=tmp_path / "x.db"
    )
    assert isinstance(ctl.store, NoOpMetadataStore) and durable is False
    assert not (tmp_path / "x.db").exists()  # the path is ignored, not half-used
    for mode in ("dataflow_colocated", "disaggregated"):
        ctl, durable = resolve_control_plane(mode, "r")
        assert isinstance(ctl.store, InMemoryMetadataStore) and durable is True
        ctl, durable = resolve_control_plane(mode, "r", metadata_db_path=tmp_path / f"{mode}.db")
        assert isinstance(ctl.store, SQLiteMetadataStore) and durable is True
        assert ctl.store.run_id == "r"  # one database file may hold several runs
    with pytest.raises(ValueError, match=r"'local'.*local_colocated.*dataflow_colocated.*disaggregated"):
        resolve_control_plane("local", "r")


@pytest.mark.integration
def test_resolve_control_plane_picks_redis_for_a_url(redis_server):
    from specforge_trainer.control_plane import RedisMetadataStore

    ctl, durable = resolve_control_plane(
        "disaggregated", "r", metadata_url=redis_server.url, metadata_db_path="/x"
    )
    assert isinstance(ctl.store, RedisMetadataStore) and durable is True
    ctl, durable = resolve_control_plane("local_colocated", "r", metadata_url="redis://127.0.0.1:1/0")
    assert isinstance(ctl.store, NoOpMetadataStore) and durable is False  # never even connects


def test_controller_state_dict_guards_the_run_id():
    ctl = DataFlowController("run-a")
    assert ctl.state_dict() == {"run_id": "run-a", "durable_global_step": None}
    ctl.commit_samples("p", [make_ref(0)])
    ctl.ack_train_refs("t", ["s00000"], global_step=3, optimizer_durable=True)
    state = ctl.state_dict()
    assert state == {"run_id": "run-a", "durable_global_step": 3}  # what the checkpoint records
    DataFlowController("run-a", metadata_store=ctl.store).load_state_dict(state)  # its store: resumes
    with pytest.raises(ValueError, match="run-a"):
        DataFlowController("run-b", metadata_store=ctl.store).load_state_dict(state)
    with pytest.raises(MetadataStoreLost, match="acked durably through step 3"):  # an emptied store
        DataFlowController("run-a").load_state_dict(state)


@pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)
def test_a_trainer_follows_its_schedule_while_producers_commit_out_of_order(store_factory):
    import threading

    ctl = DataFlowController("run-a", metadata_store=store_factory(), poll_interval_s=0.01)
    order = [5, 0, 3, 1, 4, 2]

    def produce():
        for i in order:
            ctl.commit_samples("producer", [make_ref(i)])

    threading.Timer(0.05, produce).start()
    schedule = [["s00000", "s00001", "s00002"], ["s00003", "s00004", "s00005"]]
    for step, wanted in enumerate(schedule, 1):
        refs = ctl.lease_named_refs("rank0", wanted, timeout_s=10)
        assert ids(refs) == wanted
        ctl.ack_train_refs("rank0", wanted, global_step=step, optimizer_durable=True)
    assert ctl.lease_named_refs("rank0", ["s00000"], timeout_s=0.1) == []  # done, and acked


@pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)
def test_an_ack_can_lease_the_next_step_in_the_same_store_call(store_factory):
    store = store_factory()
    ctl = DataFlowController("run-a", metadata_store=store)
    ctl.commit_samples("producer", [make_ref(i) for i in range(4)])
    lease_next = ["s00002", "s00003"]
    first = ctl.lease_named_refs("rank0", sids(0, 1))
    ctl.ack_train_refs("rank0", ids(first), global_step=1, optimizer_durable=True, lease_next=lease_next)
    if store.shares_leases:
        # the next step's refs are the trainer's already: leased in the store, waiting in the local queue
        assert (store.acked_count(), store.leased_count(), store.pending_count()) == (2, 2, 0)
        assert ctl.queue.depth() == 2
    nxt = ctl.lease_named_refs("rank0", lease_next)
    assert ids(nxt) == ["s00002", "s00003"]
    # asking again for refs the same call acks leases nothing: acked refs are never leased again
    ctl.ack_train_refs("rank0", ids(nxt), global_step=2, optimizer_durable=True, lease_next=lease_next)
    assert ctl.status().backlog == 0 and ctl.queue.depth() == 0


@pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)
def test_a_step_longer_than_the_lease_timeout_keeps_its_refs_while_kept_alive(store_factory, lease_clock):
    import threading

    store = store_factory()  # two trainers, one shared store
    # Real time (Redis): beats every second against a 4 s lease hold through a 3 s stall of a loaded machine.
    lease = 4.0 if lease_clock.real else 0.4
    slow = DataFlowController("run-a", metadata_store=store, lease_timeout_s=lease)
    other = DataFlowController("run-a", metadata_store=store, lease_timeout_s=lease)
    slow.commit_samples("producer", [make_ref(i) for i in range(3)])
    held = ids(slow.lease_named_refs("slow", sids(0, 1)))
    beats: list[float] = []  # the clock's reading at each heartbeat of "slow"
    beaten = threading.Condition()
    claim_named = store.claim_named

    def spy(trainer_id, sample_ids, lease_timeout_s):
        got = claim_named(trainer_id, sample_ids, lease_timeout_s)
        if trainer_id == "slow" and not sample_ids:
            with beaten:
                beats.append(lease_clock.monotonic())
                beaten.notify_all()
        return got

    store.claim_named = spy  # type: ignore[method-assign]

    def wait_for_a_beat() -> None:
        """The heartbeat thread renews at the clock's present reading (or later); waits in real time."""
        since = lease_clock.monotonic()
        with beaten:
            assert beaten.wait_for(lambda: bool(beats) and beats[-1] >= since, timeout=60)

    with slow.leases_kept_alive("slow"):
        for _ in range(3 if lease_clock.real else 6):  # 1.5 (3) lease timeouts without a call from the step
            lease_clock.advance(lease / 2)
            if slow.store.shares_leases:
                wait_for_a_beat()
        stolen = ids(other.lease_named_refs("other", sids(0, 1, 2)))
    if not slow.store.shares_leases:
        assert stolen == [] and beats == []  # NoOp: nothing shared, nothing to keep alive
        return
    assert held == ["s00000", "s00001"] and stolen == ["s00002"]
    # The heartbeat stopped with the block: the refs stay one lease timeout more, then come back.
    if lease_clock.real:
        lease_clock.advance(lease + 0.5)
    else:
        lease_clock.advance(lease)
        assert ids(other.lease_named_refs("other", held)) == []
        lease_clock.advance(0.001)
    assert ids(other.lease_named_refs("other", held)) == held


@pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)
def test_a_lease_claims_from_the_store_only_what_the_local_queue_lacks(store_factory):
    """Refs claimed ahead (``lease_next``) are the next step's: a lease takes them without claiming more,
    since every extra claim holds a ref another trainer could be training on."""
    store = store_factory()
    ctl = DataFlowController("run-a", metadata_store=store)
    ctl.commit_samples("producer", [make_ref(i) for i in range(6)])
    first = ctl.lease_named_refs("rank0", sids(0, 1))
    ctl.ack_train_refs("rank0", ids(first), global_step=1, optimizer_durable=True, lease_next=sids(2, 3))
    assert ids(ctl.lease_named_refs("rank0", sids(2, 3))) == ["s00002", "s00003"]
    if store.shares_leases:
        assert (store.leased_count(), store.pending_count()) == (2, 2)
    assert ids(ctl.lease_named_refs("rank0", sids(4))) == ["s00004"]
    if store.shares_leases:
        assert (store.leased_count(), store.pending_count()) == (3, 1)


def test_leasing_refs_already_held_renews_the_heartbeat_every_quarter_lease_and_no_more(lease_clock):
    """Refs claimed ahead wait in the local queue: leasing them needs no store call, except the heartbeat,
    due a quarter of the lease timeout after the store last heard from the trainer (not sooner: each
    call is a round trip to a server store; not later: the leases must never lapse)."""
    store = InMemoryMetadataStore()
    ctl = DataFlowController("run-a", metadata_store=store, lease_timeout_s=4.0)  # quarter: 1 s, exact
    ctl.commit_samples("p", [make_ref(i) for i in range(4)])
    ctl.lease_named_refs("rank0", sids(0, 1))
    ctl.ack_train_refs("rank0", sids(0, 1), global_step=1, optimizer_durable=True, lease_next=sids(2, 3))
    claims: list[list[str]] = []
    claim_named = store.claim_named

    def spy(trainer_id, sample_ids, lease_timeout_s):
        claims.append(list(sample_ids))
        return claim_named(trainer_id, sample_ids, lease_timeout_s)

    store.claim_named = spy  # type: ignore[method-assign]
    assert ids(ctl.lease_named_refs("rank0", sids(2, 3))) == sids(2, 3)
    lease_clock.advance(0.875)  # less than a quarter since the ack's claim
    assert ids(ctl.lease_named_refs("rank0", sids(2, 3))) == sids(2, 3)
    assert claims == []
    lease_clock.advance(0.125)  # exactly a quarter
    assert ids(ctl.lease_named_refs("rank0", sids(2, 3))) == sids(2, 3)
    assert claims == [[]]  # a claim of nothing: the heartbeat alone
    assert ids(ctl.lease_named_refs("rank0", sids(2, 3))) == sids(2, 3)
    assert claims == [[]]
