"""The static contracts hold: import layering (import-linter, pyproject.toml) and types (mypy, strict, over
every package `make lint` checks). Run by `make test` so a change that breaks them cannot land."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)


def test_import_layering_contracts_are_kept() -> None:
    result = _run(str(BIN / "lint-imports"), "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:]


def _mypy_targets() -> list[str]:
    makefile = (REPO_ROOT / "Makefile").read_text()
    (targets,) = re.findall(r"\$\(BIN\)/mypy (.+)", makefile)
    return targets.split()


def test_mypy_checks_every_package() -> None:
    """Each top-level package the project ships (pyproject's package roots) is type-checked whole."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    shipped = {
        f"{root}/{package.name}"
        for root in project["tool"]["setuptools"]["packages"]["find"]["where"]
        for package in (REPO_ROOT / root).iterdir()
        if (package / "__init__.py").is_file()
    }
    assert shipped == set(_mypy_targets())


@pytest.mark.slow
def test_mypy_passes_on_the_checked_packages() -> None:
    result = _run(str(BIN / "mypy"), *_mypy_targets())
    assert result.returncode == 0, result.stdout[-4000:]
