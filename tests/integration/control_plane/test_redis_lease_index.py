"""The Redis store's lease index (``owner``): a hash table from the first claim, whatever its size.

Redis keeps a hash of up to 128 short entries as a listpack, which every field lookup scans end to
end; a step's claim and ack touch each of its refs' fields, so a single trainer's index (a step or
two of refs) would be scanned a few hundred times per step. The index's layout entry prevents that.
"""

from __future__ import annotations

import time

import pytest
from _support.control_plane import make_ref
from specforge_trainer.control_plane import UnknownSampleError

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_server):
    from specforge_trainer.control_plane import RedisMetadataStore

    store = RedisMetadataStore(redis_server.url, run_id="run-a")
    yield store
    store.close()


def owner_encoding(store) -> str:
    return store._client.object("encoding", store._keys["owner"])


def test_the_index_is_a_hash_table_from_the_first_claim_and_stays_one(store):
    store.commit_samples([make_ref(i) for i in range(8)])
    first = store.claim_named("rank0", ["s00000", "s00001"], lease_timeout_s=30)
    assert owner_encoding(store) == "hashtable"
    assert store.leased_count() == 2
    store.ack_and_claim(
        "rank0",
        [r.sample_id for r in first],
        global_step=1,
        optimizer_durable=True,
        claim=["s00002", "s00003"],
        lease_timeout_s=30,
    )
    store.record_train_ack(["s00002", "s00003"], global_step=2, optimizer_durable=True)
    assert store.leased_count() == 0 and store.pending_count() == 4
    assert owner_encoding(store) == "hashtable"  # kept, not rebuilt by the next claim


def test_the_layout_entry_is_never_a_sample(store):
    store.commit_samples([make_ref(i) for i in range(3)])
    store.claim_named("rank0", ["s00000", "s00001"], lease_timeout_s=30)
    with pytest.raises(UnknownSampleError):
        store.record_train_ack([""], global_step=1, optimizer_durable=True)
    assert store.claim_named("rank0", [""], lease_timeout_s=30) == []
    with pytest.raises(UnknownSampleError):  # a failed ack gives its claims back: never the layout entry
        store.ack_and_claim(
            "rank0", ["never"], global_step=1, optimizer_durable=True, claim=[""], lease_timeout_s=30
        )
    assert (store.leased_count(), store.acked_count(), store.pending_count()) == (2, 0, 1)
    assert store.clear_leases("rank0") == 2  # the layout entry is nobody's lease
    assert (store.leased_count(), store.pending_count()) == (0, 3)


def test_a_dead_holders_refs_come_back_without_the_layout_entry(store):
    store.commit_samples([make_ref(i) for i in range(4)])
    every = ["s00000", "s00001", "s00002", "s00003"]
    assert len(store.claim_named("dead", every[:3], lease_timeout_s=0.05)) == 3
    time.sleep(0.1)
    got = store.claim_named("live", every, lease_timeout_s=30)
    assert [r.sample_id for r in got] == every
    assert store.leased_count() == 4 and store.pending_count() == 0
