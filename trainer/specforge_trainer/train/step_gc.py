"""Python's cyclic garbage collector, run between training steps instead of whenever it triggers.

Left to itself, the collector makes a full pass each time enough objects have survived the younger
generations. In a process that has imported torch a full pass walks a few hundred thousand objects
(about 0.1 s on a small VM) at whatever moment it falls due: inside a step's forward pass, or inside
the store call that acks it. With several ranks, the rank that collects is the one every other rank
waits for at the next all-reduce. Large training stacks therefore collect on their own schedule;
this does the same:

- on entry, the heap built during set-up (modules, model, data) is collected once and frozen, so no
  later pass walks it again;
- automatic collection is off while the loop runs;
- :meth:`StepBoundaryGC.step_done` makes a full pass every ``interval`` steps, over what the loop
  allocated since (refs in flight, reports), which is small.

Objects freed by reference counting (almost all of them) are freed at once as usual; only garbage in
reference cycles waits for the next boundary pass.
"""

from __future__ import annotations

import gc
from types import TracebackType

DEFAULT_INTERVAL = 50  # steps


class StepBoundaryGC:
    """Context manager for a training loop; ``interval`` 0 leaves the automatic collector alone."""

    def __init__(self, interval: int) -> None:
        if interval < 0:
            raise ValueError(f"gc interval must be a number of steps >= 0, got {interval}")
        self.interval = interval
        self._was_enabled = False

    def __enter__(self) -> StepBoundaryGC:
        if self.interval:
            self._was_enabled = gc.isenabled()
            gc.collect()
            gc.freeze()
            gc.disable()
        return self

    def step_done(self, step: int) -> None:
        """Call after each step's optimizer boundary (its ack included)."""
        if self.interval and step % self.interval == 0:
            gc.collect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.interval:
            gc.unfreeze()
            if self._was_enabled:
                gc.enable()
