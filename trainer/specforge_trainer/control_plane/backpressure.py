"""Opt-in backpressure on resident feature bytes, with hysteresis, and caps on lease grants.

Producers pause once resident bytes reach the high watermark and resume only when consumers bring
them down to the low watermark, so they don't flap around one threshold. ``None`` everywhere
means no backpressure: the queue then behaves exactly as without this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backpressure:
    high_watermark_bytes: int
    low_watermark_bytes: int
    max_grant_refs: int | None = None
    max_grant_bytes: int | None = None
    paused: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if not 0 <= self.low_watermark_bytes <= self.high_watermark_bytes:
            raise ValueError(
                "backpressure needs 0 <= low_watermark_bytes <= high_watermark_bytes, got "
                f"low={self.low_watermark_bytes} high={self.high_watermark_bytes}"
            )
        for name in ("max_grant_refs", "max_grant_bytes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")

    def observe(self, resident_bytes: int) -> bool:
        """Update the state for ``resident_bytes``; True while producers may add more."""
        if self.paused and resident_bytes <= self.low_watermark_bytes:
            self.paused = False
        elif not self.paused and resident_bytes >= self.high_watermark_bytes:
            self.paused = True
        return not self.paused

    def grant(self, sizes: list[int]) -> int:
        """How many of the next refs (by ``estimated_bytes``) one lease may take; at least one."""
        n = len(sizes) if self.max_grant_refs is None else min(len(sizes), self.max_grant_refs)
        if self.max_grant_bytes is not None:
            total = 0
            for i, size in enumerate(sizes[:n]):
                total += size
                if total > self.max_grant_bytes and i > 0:
                    return i
        return n
