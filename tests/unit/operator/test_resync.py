"""The operator-level resync loop: which namespaces, which replica, which runs, how often."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from specforge_operator.resync import Peering, ResyncLoop, is_highest_live_peer, served_namespaces

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _seen(seconds_ago: float, priority: int, lifetime: int = 10) -> dict[str, Any]:
    return {
        "priority": priority,
        "lifetime": lifetime,
        "lastseen": (NOW - timedelta(seconds=seconds_ago)).isoformat(),
    }


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], None),
        (["--peering=x", "--standalone"], None),
        (["--namespace=a", "--namespace", "b", "-n", "c", "--peering=x"], ["a", "b", "c"]),
    ],
)
def test_served_namespaces_come_from_the_kopf_run_arguments(
    argv: list[str], expected: list[str] | None
) -> None:
    assert served_namespaces(argv) == expected


PEERS = {
    "alone": ({"me": _seen(1, 50)}, True),
    "before the first keep-alive": ({}, True),
    "a lower live peer": ({"me": _seen(1, 50), "other": _seen(1, 20)}, True),
    "a higher live peer": ({"me": _seen(1, 50), "other": _seen(1, 90)}, False),
    "a higher dead peer": ({"me": _seen(1, 50), "other": _seen(11, 90)}, True),
    "a tie (kopf pauses both)": ({"me": _seen(1, 50), "other": _seen(1, 50)}, False),
}


@pytest.mark.parametrize(("status", "active"), PEERS.values(), ids=PEERS.keys())
def test_only_the_replica_kopf_keeps_active_resyncs(status: dict[str, Any], active: bool) -> None:
    assert is_highest_live_peer(status, 50, NOW) is active


class FakeKube:
    def __init__(self, runs: list[dict[str, Any]], peering: dict[str, Any] | None = None) -> None:
        self.runs = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in runs}
        self.peering = peering
        self.calls: list[tuple[str, ...]] = []

    def list(self, api_version: str, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list", kind, namespace))
        return [run for (ns, _), run in sorted(self.runs.items()) if namespace in ("", ns)]

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", kind, namespace, name))
        if kind.endswith("KopfPeering"):
            return self.peering
        return self.runs.get((namespace, name))


def _run(namespace: str, name: str, phase: str = "Running", deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"namespace": namespace, "name": name}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata, "status": {"phase": phase}}


def _loop(kube: FakeKube, seen: list[str], **options: Any) -> ResyncLoop:
    def reconcile(run: dict[str, Any]) -> str | None:
        seen.append(run["metadata"]["name"])
        return run["status"]["phase"]

    defaults: dict[str, Any] = {
        "namespaces": None,
        "peering": Peering(None, 0, True),
        "interval": 60,
        "restarting_interval": 2,
        "clock": lambda: NOW,
    }
    return ResyncLoop(kube, reconcile, **{**defaults, **options})  # type: ignore[arg-type]


def test_a_pass_reconciles_every_run_of_the_served_namespaces_but_those_being_deleted() -> None:
    kube = FakeKube(
        [_run("a", "one"), _run("b", "two"), _run("c", "three"), _run("a", "gone", deleting=True)]
    )
    seen: list[str] = []
    _loop(kube, seen, namespaces=["a", "b"]).resync_all()
    assert seen == ["one", "two"]
    assert [call for call in kube.calls if call[0] == "list"] == [
        ("list", "SpecForgeRun", "a"),
        ("list", "SpecForgeRun", "b"),
    ]
    everywhere: list[str] = []
    _loop(kube, everywhere).resync_all()
    assert sorted(everywhere) == ["one", "three", "two"]


def test_runs_reported_restarting_are_looked_at_between_passes_until_they_are_not() -> None:
    kube = FakeKube([_run("a", "restarting", "Restarting"), _run("a", "calm")])
    seen: list[str] = []
    loop = _loop(kube, seen)
    loop.note_phase("a", "restarting", "Restarting")
    loop.note_phase("a", "calm", "Running")
    loop.resync_restarting()
    assert seen == ["restarting"]
    loop.note_phase("a", "restarting", "Running")
    seen.clear()
    loop.resync_restarting()
    assert seen == []


def test_a_restarting_run_deleted_meanwhile_is_forgotten() -> None:
    kube = FakeKube([])
    seen: list[str] = []
    loop = _loop(kube, seen)
    loop.note_phase("a", "vanished", "Restarting")
    loop.resync_restarting()
    loop.resync_restarting()
    assert [call for call in kube.calls if call[0] == "get"] == [("get", "SpecForgeRun", "a", "vanished")]


def test_with_peering_the_loop_reads_its_peering_object() -> None:
    standby = FakeKube([], peering={"status": {"me": _seen(1, 5), "other": _seen(1, 9)}})
    assert not _loop(standby, [], peering=Peering("sfo", 5, True)).active()
    assert standby.calls == [("get", "ClusterKopfPeering", "", "sfo")]
    namespaced = FakeKube([], peering={"status": {"me": _seen(1, 9)}})
    assert _loop(namespaced, [], namespaces=["team-a"], peering=Peering("sfo", 9, False)).active()
    assert namespaced.calls == [("get", "KopfPeering", "team-a", "sfo")]
    assert _loop(FakeKube([]), []).active(), "standalone: always active"
