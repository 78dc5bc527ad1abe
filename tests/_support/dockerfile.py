"""The repository's Dockerfile read as stages: what the packaging tests check without building it."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "Dockerfile"


def dockerfile_stages(path: Path = DOCKERFILE) -> dict[str, list[str]]:
    """Stage name → its instructions (continuation lines joined, comments dropped), in file order."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if match := re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE):
            current = stages.setdefault(match.group(2), [f"FROM {match.group(1)}"])
        elif line and not line.startswith("#") and stages:
            current.append(line)
    return stages
