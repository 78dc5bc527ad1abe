#!/usr/bin/env python3
"""Print `make test`'s timing summary from the files under $SPECFORGE_TIMINGS_DIR (default build/timings).

preparations.tsv  NAME  SECONDS  STATUS   (hack/timed.sh, and the test session's cluster bring-up)
tests.tsv         NODEID  LAYER  SECONDS  OUTCOME   (tests/_support/timings.py)
wall              the start time of `make test` (seconds since the epoch)
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from pathlib import Path

SLOWEST = 10


def _rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        return []
    return [line.split("\t") for line in path.read_text().splitlines() if line.strip()]


def _minutes(seconds: float) -> str:
    return f"{seconds:7.1f} s" if seconds < 120 else f"{seconds:7.1f} s ({seconds / 60:.1f} min)"


def summary(directory: Path) -> str:
    lines = ["", "make test: where the time went"]
    wall = directory / "wall"
    if wall.is_file():
        lines.append(f"  {'wall time':<38} {_minutes(time.time() - float(wall.read_text()))}")
    preparations = _rows(directory / "preparations.tsv")
    if preparations:
        lines.append("  preparations (the three builds overlap):")
        for name, seconds, status in preparations:
            flag = "" if status == "0" else f"  FAILED (exit {status})"
            lines.append(f"    {name:<36} {_minutes(float(seconds))}{flag}")
    tests = _rows(directory / "tests.tsv")
    if tests:
        per_layer: dict[str, list[float]] = defaultdict(list)
        failed = 0
        for _, layer, seconds, outcome in tests:
            per_layer[layer].append(float(seconds))
            failed += outcome == "failed"
        lines.append(f"  test layers ({len(tests)} tests, {failed} failed):")
        for layer in ("unit", "integration", "e2e", "realnode"):
            if per_layer.get(layer):
                count, total = len(per_layer[layer]), sum(per_layer[layer])
                lines.append(f"    {layer:<24} {count:>4} tests {_minutes(total)}")
        lines.append(f"  slowest {SLOWEST} tests:")
        for nodeid, layer, seconds, _ in sorted(tests, key=lambda row: -float(row[2]))[:SLOWEST]:
            lines.append(f"    {float(seconds):7.1f} s  [{layer}] {nodeid}")
    return "\n".join(lines)


if __name__ == "__main__":
    target = Path(
        sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SPECFORGE_TIMINGS_DIR", "build/timings")
    )
    print(summary(target))
