"""What each image's ``pip install`` puts in its virtualenv, checked without Docker: the build context the
``.dockerignore`` lets through is copied the way the Dockerfile's build stages copy it, and built into a
wheel by the same setuptools backend. The operator image must carry the operator package only."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def _build_wheel(context: Path, out: Path) -> zipfile.ZipFile:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(out),
            str(context),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    return zipfile.ZipFile(wheel)


def _context(tmp_path: Path, packages: tuple[str, ...]) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, context / name)
    for package in packages:
        shutil.copytree(
            REPO_ROOT / package, context / package, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    return context


def _top_level_packages(wheel: zipfile.ZipFile) -> set[str]:
    return {name.split("/", 1)[0] for name in wheel.namelist() if "/" in name and ".dist-info/" not in name}


@pytest.mark.slow
def test_operator_stage_installs_the_operator_package_only(tmp_path: Path) -> None:
    context = _context(tmp_path, ("operator",))
    (context / "trainer").mkdir()  # as the Dockerfile's operator-build stage does
    wheel = _build_wheel(context, tmp_path / "dist")
    assert _top_level_packages(wheel) == {"specforge_operator"}
    metadata = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    requires = [
        line for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")
    ]
    operator_requires = [line for line in requires if 'extra == "operator"' in line or "extra ==" not in line]
    assert operator_requires and not [line for line in operator_requires if "torch" in line], (
        operator_requires
    )


@pytest.mark.slow
def test_trainer_stage_installs_both_packages(tmp_path: Path) -> None:
    wheel = _build_wheel(_context(tmp_path, ("operator", "trainer")), tmp_path / "dist")
    assert {"specforge_operator", "specforge_trainer"} <= _top_level_packages(wheel)
    entry_points = next(name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt"))
    assert "specforge = specforge_trainer.cli:main" in wheel.read(entry_points).decode()
    # The builtin dataset and tokenizer (no download in the pod) must be in the image too.
    bundled = {
        path.relative_to(REPO_ROOT / "trainer").as_posix()
        for path in (REPO_ROOT / "trainer" / "specforge_trainer" / "resources").rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    }
    assert bundled and bundled <= set(wheel.namelist()), bundled - set(wheel.namelist())
