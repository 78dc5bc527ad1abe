"""The training loop collects garbage between steps, never inside one (see ``step_gc``)."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import pytest
from specforge_trainer.build import build_offline_trainer

pytestmark = pytest.mark.slow


def test_collections_happen_at_step_boundaries_only(tmp_path: Path, make_manifest, cpu_context) -> None:
    run, _ = make_manifest(maxSteps=6)
    trainer = build_offline_trainer(
        run, out_dir=tmp_path / "out", feature_store_dir=tmp_path / "f", context=cpu_context
    )
    trainer.settings = dataclasses.replace(trainer.settings, gc_interval=2)
    collections: list[int] = []  # the step counter when each pass started
    automatic_during_steps: list[bool] = []

    class Probe:
        def on_start(self, restored):
            pass

        def on_step(self, report):
            automatic_during_steps.append(gc.isenabled())

        def on_end(self, reports):
            pass

    def on_collect(phase, info):
        if phase == "start":
            collections.append(trainer.counters.step)

    trainer.sinks.append(Probe())
    gc.callbacks.append(on_collect)
    try:
        trainer.train()
    finally:
        gc.callbacks.remove(on_collect)
    assert automatic_during_steps == [False] * 6
    assert [step for step in collections if step] == [2, 4, 6]  # step 0: set-up's, before the freeze
    assert gc.isenabled()
