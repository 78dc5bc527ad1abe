"""SampleRefQueue: FIFO leases, idempotent put, ack/fail, expiry, partition, opt-in backpressure."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from _support.control_plane import make_ref
from specforge_trainer.control_plane import Backpressure, SampleRefQueue, shard_of


def ids(refs):
    return [r.sample_id for r in refs]


def test_fifo_leases_and_idempotent_put():
    q = SampleRefQueue()
    assert q.put_many(make_ref(i) for i in range(5)) == 5
    assert q.put(make_ref(1)) is False  # pending already
    assert ids(q.get(2)) == ["s00000", "s00001"]
    assert q.put(make_ref(0)) is False  # in flight
    assert (q.depth(), q.in_flight()) == (3, 2)
    assert q.ack(["s00000", "s00000", "unknown"]) == 1
    assert q.ack(["s00000"]) == 0
    assert ids(q.get(10)) == ["s00002", "s00003", "s00004"]


def test_get_waits_for_a_producer_and_times_out_empty():
    q = SampleRefQueue()
    t0 = time.monotonic()
    assert q.get(4, timeout_s=0.1) == []
    assert time.monotonic() - t0 >= 0.1
    threading.Timer(0.05, lambda: q.put(make_ref(7))).start()
    assert ids(q.get(4, timeout_s=5)) == ["s00007"]


def test_fail_returns_retryable_refs_to_the_head_and_drops_the_rest():
    q = SampleRefQueue()
    q.put_many(make_ref(i) for i in range(4))
    q.get(3)
    assert q.fail(["s00001", "s00000"], retryable=True) == 2
    assert q.fail(["s00002"], retryable=False) == 1
    assert ids(q.get(10)) == ["s00001", "s00000", "s00003"]
    assert q.failed_count == 1


def test_expired_leases_are_reclaimed(lease_clock):
    q = SampleRefQueue(lease_timeout_s=0.25)  # times in binary fractions: the clock lands on the dot
    q.put_many(make_ref(i) for i in range(2))
    assert ids(q.get(1)) == ["s00000"]
    lease_clock.advance(0.125)
    assert q.reclaim_expired() == 0 and ids(q.get(5)) == ["s00001"]
    lease_clock.advance(0.125)  # s00000's lease is exactly 0.25 s old: expired, back at the head
    assert ids(q.get(5)) == ["s00000"]
    assert q.reclaim_expired() == 0  # leases just renewed
    named = SampleRefQueue(lease_timeout_s=0.25)  # named leases expire the same way
    named.put_many(make_ref(i) for i in range(2))
    assert ids(named.get_named(["s00001"])) == ["s00001"]
    lease_clock.advance(0.25)
    assert named.reclaim_expired() == 1 and ids(named.get(5)) == ["s00001", "s00000"]


def test_a_lease_timeout_must_be_positive():
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="lease_timeout_s must be > 0"):
            SampleRefQueue(lease_timeout_s=bad)


def test_acks_forget_pending_and_leased_refs_and_count_them():
    q = SampleRefQueue()
    q.put_many(make_ref(i, nbytes=10) for i in range(4))
    assert q.put_many([make_ref(1), make_ref(4, nbytes=10)]) == 1  # a duplicate does not stop the rest
    q.get(2)
    assert q.missing(["s00000", "s00003", "s00009", "s00009"]) == ["s00009"]  # leased and pending are known
    assert q.ack(["s00000", "s00003"]) == 2  # one leased, one pending
    assert (q.depth(), q.in_flight(), q.resident_bytes) == (2, 1, 30)
    assert q.fail(["s00001"], retryable=False) == 1
    assert (q.failed_count, q.resident_bytes) == (1, 20)  # a dropped ref no longer holds its bytes


def test_partition_is_deterministic_and_covers_every_ref():
    refs = [make_ref(i) for i in range(200)]
    assert [shard_of(r.sample_id, 4) for r in refs] == [shard_of(r.sample_id, 4) for r in refs]
    counts = Counter(shard_of(r.sample_id, 4) for r in refs)
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 20
    q = SampleRefQueue()
    q.put_many(refs)
    got = [ids(q.get(500, shard=(i, 4))) for i in range(4)]
    assert sorted(s for shard in got for s in shard) == sorted(ids(refs))
    assert all(shard_of(s, 4) == i for i, shard in enumerate(got) for s in shard)
    with pytest.raises(ValueError, match="shard"):
        q.get(1, shard=(4, 4))


def test_backpressure_has_hysteresis_and_caps_grants():
    bp = Backpressure(
        high_watermark_bytes=5000, low_watermark_bytes=2000, max_grant_refs=3, max_grant_bytes=2500
    )
    q = SampleRefQueue(backpressure=bp)
    q.put_many(make_ref(i, nbytes=1000) for i in range(4))
    assert q.accepting()
    q.put(make_ref(4, nbytes=1000))
    assert not q.accepting()  # reached the high watermark
    assert len(q.get(10)) == 2  # byte cap: 2 x 1000 <= 2500 < 3 x 1000
    q.ack(["s00000", "s00001"])
    assert not q.accepting()  # 3000 > low watermark: still paused
    q.ack(q_ids := ids(q.get(1)))
    assert q_ids == ["s00002"] and q.accepting()  # 2000 <= low: resumes
    with pytest.raises(ValueError, match="low_watermark"):
        Backpressure(high_watermark_bytes=1, low_watermark_bytes=2)


def test_no_backpressure_changes_nothing():
    q = SampleRefQueue(backpressure=None)
    q.put_many(make_ref(i, nbytes=10**12) for i in range(100))
    assert q.accepting() and len(q.get(100)) == 100


def test_named_gets_wait_for_their_refs_and_answer_in_the_order_asked():
    q = SampleRefQueue()
    q.put_many([make_ref(2), make_ref(0)])
    assert ids(q.get_named(["s00000", "s00001", "s00002"], timeout_s=0.05)) == ["s00000", "s00002"]
    threading.Timer(0.05, lambda: q.put(make_ref(1))).start()
    assert ids(q.get_named(["s00000", "s00001", "s00002"], timeout_s=5)) == ["s00000", "s00001", "s00002"]
    assert (q.depth(), q.in_flight()) == (0, 3)
