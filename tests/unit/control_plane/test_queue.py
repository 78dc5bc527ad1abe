"""SampleRefQueue: named leases, idempotent put, idempotent ack."""

from __future__ import annotations

import threading
import time

from _support.control_plane import make_ref
from specforge_trainer.control_plane import SampleRefQueue


def ids(refs):
    return [r.sample_id for r in refs]


def test_idempotent_put_and_ack():
    q = SampleRefQueue()
    assert q.put_many(make_ref(i) for i in range(5)) == 5
    assert q.put(make_ref(1)) is False  # pending already
    assert ids(q.get_named(["s00000", "s00001"])) == ["s00000", "s00001"]
    assert q.put(make_ref(0)) is False  # in flight
    assert (q.depth(), q.in_flight()) == (3, 2)
    assert q.ack(["s00000", "s00000", "unknown"]) == 1
    assert q.ack(["s00000"]) == 0
    assert ids(q.get_named(["s00004", "s00002", "s00003"])) == ["s00004", "s00002", "s00003"]


def test_acks_forget_pending_and_leased_refs_and_count_them():
    q = SampleRefQueue()
    q.put_many(make_ref(i) for i in range(4))
    assert q.put_many([make_ref(1), make_ref(4)]) == 1  # a duplicate does not stop the rest
    q.get_named(["s00000", "s00001"])
    assert q.missing(["s00000", "s00003", "s00009", "s00009"]) == ["s00009"]  # leased and pending are known
    assert q.ack(["s00000", "s00003"]) == 2  # one leased, one pending
    assert (q.depth(), q.in_flight()) == (2, 1)
    assert q.missing(["s00000", "s00003"]) == ["s00000", "s00003"]  # forgotten: a producer may put them again
    assert ids(q.get_named(["s00002", "s00003", "s00004"])) == ["s00002", "s00004"]


def test_named_gets_wait_for_their_refs_and_answer_in_the_order_asked():
    q = SampleRefQueue()
    q.put_many([make_ref(2), make_ref(0)])
    t0 = time.monotonic()
    assert ids(q.get_named(["s00000", "s00001", "s00002"], timeout_s=0.05)) == ["s00000", "s00002"]
    assert time.monotonic() - t0 >= 0.05, "a partial answer waits out its timeout"
    threading.Timer(0.05, lambda: q.put(make_ref(1))).start()
    assert ids(q.get_named(["s00000", "s00001", "s00002"], timeout_s=5)) == ["s00000", "s00001", "s00002"]
    assert (q.depth(), q.in_flight()) == (0, 3)


def test_a_complete_named_get_does_not_wait():
    q = SampleRefQueue()
    q.put_many([make_ref(0), make_ref(1)])
    t0 = time.monotonic()
    assert ids(q.get_named(["s00001", "s00001", "s00000"], timeout_s=30)) == ["s00001", "s00000"]
    assert time.monotonic() - t0 < 5
