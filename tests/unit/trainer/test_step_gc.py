"""The training loop's garbage-collection schedule, against the real collector."""

from __future__ import annotations

import gc
import weakref

import pytest
from specforge_trainer.train.step_gc import StepBoundaryGC


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture(autouse=True)
def restore_collector():
    enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if enabled:
        gc.enable()


def test_set_up_is_frozen_and_automatic_collection_off_inside_then_restored():
    gc.enable()
    with StepBoundaryGC(interval=3):
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_cyclic_garbage_is_freed_at_the_boundary_step_only():
    with StepBoundaryGC(interval=3) as collector:
        node = Node()
        alive = weakref.ref(node)
        del node
        for _ in range(5000):  # would trigger automatic collections if they were on
            Node()
        collector.step_done(1)
        collector.step_done(2)
        assert alive() is not None
        collector.step_done(3)
        assert alive() is None


def test_interval_zero_leaves_the_automatic_collector_alone():
    gc.enable()
    with StepBoundaryGC(interval=0) as collector:
        assert gc.isenabled() and gc.get_freeze_count() == 0
        collector.step_done(0)
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    with StepBoundaryGC(interval=2):
        pass
    assert not gc.isenabled()


def test_a_negative_interval_is_refused():
    with pytest.raises(ValueError, match="gc interval"):
        StepBoundaryGC(interval=-1)
