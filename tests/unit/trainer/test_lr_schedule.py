"""The learning-rate multiplier: upstream's warmup + cosine curve, and the constant variant."""

from __future__ import annotations

import itertools
import math

import pytest
from specforge_trainer.train.lr_schedule import lr_multiplier


def test_warmup_rises_linearly_to_the_peak_then_cosine_decays_to_zero() -> None:
    curve = lr_multiplier(total_steps=200, warmup_ratio=0.02, kind="cosine")  # 4 warmup steps
    assert [curve(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert curve(4) == 1.0  # the first decay step is still the peak
    assert curve(4 + 98) == pytest.approx(0.5 * (1 + math.cos(math.pi * 98 / 196)))
    assert curve(200) == pytest.approx(0.0, abs=1e-12)
    values = [curve(s) for s in range(4, 201)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_constant_holds_the_peak_after_warmup_and_a_short_run_has_no_warmup() -> None:
    curve = lr_multiplier(total_steps=100, warmup_ratio=0.05, kind="constant")
    assert [curve(s) for s in (0, 4, 5, 99)] == [0.2, 1.0, 1.0, 1.0]
    assert lr_multiplier(total_steps=10, warmup_ratio=0.015, kind="cosine")(0) == 1.0


def test_an_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        lr_multiplier(total_steps=10, warmup_ratio=0.1, kind="linear")  # type: ignore[arg-type]
