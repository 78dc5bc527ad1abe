"""Every module imports on its own in a fresh interpreter: no import cycle that only a lucky import
order resolves, no module that works only after another one was imported first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PACKAGE_ROOTS = {"api": "specforge_api", "operator": "specforge_operator", "trainer": "specforge_trainer"}


def _modules() -> list[str]:
    names = []
    for folder, package in PACKAGE_ROOTS.items():
        for path in sorted((REPO_ROOT / folder / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT / folder).with_suffix("").parts
            if parts[-1] == "__main__":
                continue  # running it is its job
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.slow
@pytest.mark.parametrize("module", _modules())
def test_module_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
