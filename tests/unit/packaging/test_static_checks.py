"""The static contracts hold: import layering (import-linter, pyproject.toml) and types (mypy over the
packages `make lint` checks). Run by `make test` so a change that breaks them cannot land."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_import_layering_contracts_are_kept() -> None:
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.slow
def test_mypy_passes_on_the_checked_packages() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    (targets,) = re.findall(r"\$\(BIN\)/mypy (.+)", makefile)
    result = _run(str(BIN / "mypy"), *targets.split())
    assert result.returncode == 0, result.stdout[-4000:]
