"""Intra-op threads on CPU follow the pod's CPU request, so a laptop run and its pod use the same count."""

from __future__ import annotations

import os

import pytest
from specforge_trainer.train.distributed import cpu_threads


@pytest.mark.parametrize(("request_", "threads"), [("500m", 1), ("1", 1), ("1500m", 1), ("2", 2), (".1", 1)])
def test_whole_cores_of_the_request_and_at_least_one(
    monkeypatch: pytest.MonkeyPatch, request_: str, threads: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(16)))
    assert cpu_threads(request_) == threads


def test_never_more_than_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    assert cpu_threads("16") == 2
