"""The learning-rate multiplier per optimizer step: linear warmup, then cosine decay or constant.

Upstream SpecForge's recipe (its ``CosineAnnealingWarmupLR``): ``warmup_steps = int(warmup_ratio *
total_steps)``; during warmup the rate rises linearly to the peak, reaching it at the last warmup
step; then it follows ``(1 + cos(pi * progress)) / 2`` down to 0 at ``total_steps``. A pure
function of the step, so a resumed scheduler (``LambdaLR`` restores its step count) continues the
same curve.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

ScheduleKind = Literal["cosine", "constant"]


def lr_multiplier(*, total_steps: int, warmup_ratio: float, kind: ScheduleKind) -> Callable[[int], float]:
    if kind not in ("cosine", "constant"):
        raise ValueError(f"unknown learning-rate schedule {kind!r}; known: cosine, constant")
    warmup_steps = int(warmup_ratio * total_steps)
    decay_steps = max(1, total_steps - warmup_steps)

    def multiplier(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return multiplier
