"""Each run's state in a shared Redis is its own, and a store that lost it is named: runs named alike in two namespaces, and a run deleted
and applied again under its name (a new uid), never see each other's refs, acks or durable marker."""

from __future__ import annotations

import pytest
from _support.control_plane import make_ref
from _support.manifests import minimal_run
from specforge_api import SpecForgeRun
from specforge_api.pod_contract import Env
from specforge_trainer.control_plane import (
    DeploymentMode,
    MetadataStoreLost,
    resolve_control_plane,
    run_scope,
)

pytestmark = pytest.mark.integration


def _run(namespace: str) -> SpecForgeRun:
    manifest = minimal_run("demo", deploymentMode="dataflow_colocated")
    manifest["metadata"]["namespace"] = namespace
    return SpecForgeRun.model_validate(manifest)


def _controller(redis_url: str, run: SpecForgeRun, uid: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(Env.RUN_UID, uid)
    scope = run_scope(run)
    controller, durable = resolve_control_plane(
        DeploymentMode.DATAFLOW_COLOCATED, scope, metadata_url=redis_url
    )
    assert durable
    return scope, controller


def _train_three(scope: str, controller) -> None:
    controller.commit_samples("producer-0", [make_ref(i, run_id=scope) for i in range(3)])
    controller.store.record_train_ack([f"s{i:05d}" for i in range(3)], global_step=1, optimizer_durable=True)


def test_runs_named_alike_and_a_recreated_run_start_empty(redis_server, monkeypatch) -> None:
    first_scope, first = _controller(redis_server.url, _run("team-a"), "uid-1", monkeypatch)
    _train_three(first_scope, first)
    assert (first.status().committed, first.status().acked, first.status().durable_global_step) == (3, 3, 1)

    for namespace, uid in (("team-b", "uid-2"), ("team-a", "uid-3")):  # same name elsewhere; re-created
        scope, other = _controller(redis_server.url, _run(namespace), uid, monkeypatch)
        assert scope != first_scope
        status = other.status()
        assert (status.committed, status.acked, status.durable_global_step) == (0, 0, None), namespace
        assert other.commit_samples("producer-0", [make_ref(0, run_id=scope)])  # fresh, not a duplicate
        # The old run's checkpoint is not taken for this run's.
        with pytest.raises(ValueError, match="checkpoint belongs to run 'team-a/demo/uid-1'"):
            other.load_state_dict(first.state_dict())
        other.close()
    assert first.status().committed == 3  # untouched by the others
    first.close()


def test_without_a_uid_a_laptop_run_is_scoped_by_its_name(monkeypatch) -> None:
    monkeypatch.delenv(Env.RUN_UID, raising=False)
    assert run_scope(_run("team-a")) == "demo"
    monkeypatch.setenv(Env.RUN_UID, "0b1c")
    assert run_scope(_run("team-a")) == "team-a/demo/0b1c"


def test_a_store_that_lost_the_runs_acks_stops_the_resume_with_metadata_store_lost(
    redis_server, monkeypatch
) -> None:
    """A managed Redis without persistence whose pod was replaced comes back empty: the resumed trainer
    says so at once, in the words the operator fails the run on, instead of waiting for refs forever."""
    scope, controller = _controller(redis_server.url, _run("team-a"), "uid-1", monkeypatch)
    _train_three(scope, controller)
    checkpoint_state = controller.state_dict()
    assert checkpoint_state["durable_global_step"] == 1

    _, intact = _controller(redis_server.url, _run("team-a"), "uid-1", monkeypatch)
    intact.load_state_dict(checkpoint_state)  # the same store: resumes
    controller.store._client.flushall()  # the store's data is gone
    _, resumed = _controller(redis_server.url, _run("team-a"), "uid-1", monkeypatch)
    with pytest.raises(MetadataStoreLost, match=r"^MetadataStoreLost: .* acked durably through step 1"):
        resumed.load_state_dict(checkpoint_state)
    for opened in (controller, intact, resumed):
        opened.close()
