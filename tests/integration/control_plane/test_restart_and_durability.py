"""Restarts: the SQLite file reopened, Redis restarted and SIGKILLed with AOF — committed and acked state intact."""

from __future__ import annotations

import pytest
from _support.control_plane import make_ref
from specforge_trainer.control_plane import (
    DataFlowController,
    DurableMarker,
    SQLiteMetadataStore,
    StoreConfigError,
)

pytestmark = pytest.mark.integration


def ids(refs):
    return [r.sample_id for r in refs]


def run_half(ctl: DataFlowController) -> list[str]:
    ctl.commit_samples("p", [make_ref(i) for i in range(10)])
    acked = []
    for step in (1, 2):
        refs = ctl.lease_named_refs("rank0", [f"s{i:05d}" for i in range(3 * step - 3, 3 * step)])
        ctl.ack_train_refs("rank0", ids(refs), global_step=step, optimizer_durable=True)
        acked += ids(refs)
    assert len(ctl.lease_named_refs("rank0", ["s00006", "s00007"])) == 2  # in flight at the crash
    return acked


def assert_resumes(ctl: DataFlowController, acked: list[str]) -> None:
    assert ctl.store.committed_count() == 10
    assert sorted(ctl.store.acked_steps()) == sorted(acked)
    assert ctl.store.durable_marker() == DurableMarker(2, True, 6)
    report = ctl.reconcile_on_restart(trainer_id="rank0")
    assert (report.requeued, report.pending) == (2, 4)
    rest = ctl.lease_named_refs("rank0", [f"s{i:05d}" for i in range(10)])
    assert ids(rest) == [f"s{i:05d}" for i in range(6, 10)]  # nothing acked comes back, nothing is lost


def test_sqlite_state_survives_reopening(tmp_path):
    db = tmp_path / "meta.db"
    acked = run_half(DataFlowController("run-a", metadata_store=SQLiteMetadataStore(db, run_id="run-a")))
    assert_resumes(DataFlowController("run-a", metadata_store=SQLiteMetadataStore(db, run_id="run-a")), acked)


@pytest.mark.parametrize("how", ["restart", "sigkill"])
def test_redis_state_survives_a_restart_and_a_kill(redis_server, how):
    from specforge_trainer.control_plane import RedisMetadataStore

    ctl = DataFlowController("run-a", metadata_store=RedisMetadataStore(redis_server.url, run_id="run-a"))
    acked = run_half(ctl)
    if how == "sigkill":
        redis_server.kill()  # right after the ack returned: appendfsync always already fsynced it
        redis_server.start()
    else:
        redis_server.restart()
    # the trainer restarts too (a fresh controller); the store's client reconnects by itself
    assert_resumes(DataFlowController("run-a", metadata_store=ctl.store), acked)


def test_an_ack_survives_kill_9_immediately_after_it_returns(redis_server):
    from specforge_trainer.control_plane import RedisMetadataStore

    store = RedisMetadataStore(redis_server.url, run_id="run-k")
    store.commit_samples([make_ref(i, "run-k") for i in range(200)])
    for step in range(1, 21):
        store.record_train_ack(
            [make_ref(i).sample_id for i in range((step - 1) * 10, step * 10)],
            global_step=step,
            optimizer_durable=True,
        )
        if step == 20:
            redis_server.kill()
    redis_server.start()
    assert store.acked_count() == 200
    assert store.durable_marker() == DurableMarker(20, True, 200)


@pytest.mark.parametrize(
    ("server_kwargs", "reason"),
    [({"appendfsync": "everysec"}, "appendfsync=everysec"), ({"appendonly": False}, "appendonly=no")],
)
def test_strict_durability_refuses_a_server_that_could_lose_acks(redis_server_factory, server_kwargs, reason):
    from specforge_trainer.control_plane import RedisMetadataStore

    server = redis_server_factory(**server_kwargs)
    with pytest.raises(StoreConfigError, match=reason):
        RedisMetadataStore(server.url)
    RedisMetadataStore(server.url, durability="relaxed").commit_samples([make_ref(0)])  # opted out knowingly


def test_pipelined_calls_reload_scripts_a_restarted_server_forgot(redis_server):
    from specforge_trainer.control_plane import RedisMetadataStore

    store = RedisMetadataStore(redis_server.url, run_id="run-a")
    store.commit_samples([make_ref(i) for i in range(2500)])  # three script calls: a pipeline
    first = store.claim_named("rank0", [f"s{i:05d}" for i in range(1200)], lease_timeout_s=30)
    redis = store._client  # the server's script cache emptied, as after a restart
    redis.script_flush()
    leased = store.ack_and_claim(
        "rank0",
        ids(first),
        global_step=1,
        optimizer_durable=True,
        claim=["s01200", "s02499"],
        lease_timeout_s=30,
    )
    assert ids(leased) == ["s01200", "s02499"] and store.acked_count() == 1200
    redis.script_flush()
    assert store.commit_samples([make_ref(i) for i in range(2400, 3600)]).count(True) == 1100
