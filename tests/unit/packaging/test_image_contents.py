"""What each image's ``pip install`` puts in its virtualenv, checked without Docker: the build context the
``.dockerignore`` lets through is laid out the way the Dockerfile's build stages lay it out (the
directories their ``RUN mkdir`` creates, then what their ``COPY`` lines copy), and built into a wheel by
the same setuptools backend. The operator image carries the shared API and the operator, the trainer
image the shared API and the trainer: neither carries the other's package."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from _support.dockerfile import dockerfile_stages

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO_ROOT / "Dockerfile"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")  # as .dockerignore


def _instructions(stage: str) -> list[str]:
    """The instructions that make ``stage``, its parents' first, in build order."""
    stages = dockerfile_stages()
    chain = [stage]
    while (parent := stages[chain[-1]][0].removeprefix("FROM ")) in stages:
        chain.append(parent)
    return [line for name in reversed(chain) for line in stages[name][1:]]


def _context(tmp_path: Path, stage: str) -> Path:
    """The stage's WORKDIR as its last ``pip install .`` sees it (the source files, not the venv)."""
    context = tmp_path / "context"
    context.mkdir()
    for line in _instructions(stage):
        if line.startswith("RUN ") and (mkdir := re.search(r"\bmkdir ((?:[\w.-]+ ?)+)", line)):
            for name in mkdir.group(1).split():
                (context / name).mkdir(exist_ok=True)
        elif line.startswith("COPY ") and "--from=" not in line:
            *sources, destination = line.split()[1:]
            for source in sources:
                origin = REPO_ROOT / source.rstrip("/")
                if origin.is_dir():
                    target = context / destination.rstrip("/") if destination != "./" else context
                    shutil.copytree(origin, target, ignore=IGNORED, dirs_exist_ok=True)
                else:
                    shutil.copy(origin, context / origin.name)
    return context


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


def _top_level_packages(wheel: zipfile.ZipFile) -> set[str]:
    return {name.split("/", 1)[0] for name in wheel.namelist() if "/" in name and ".dist-info/" not in name}


def _requires(wheel: zipfile.ZipFile) -> list[str]:
    metadata = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
    return [line for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]


@pytest.mark.slow
def test_dependency_stages_install_no_package_of_ours(tmp_path: Path) -> None:
    # operator-deps and trainer-deps install the extras from a context with empty package directories.
    wheel = _build_wheel(_context(tmp_path, "operator-deps"), tmp_path / "dist")
    assert _top_level_packages(wheel) == set()


@pytest.mark.slow
def test_operator_stage_installs_the_api_and_the_operator_only(tmp_path: Path) -> None:
    wheel = _build_wheel(_context(tmp_path, "operator-build"), tmp_path / "dist")
    assert _top_level_packages(wheel) == {"specforge_api", "specforge_operator"}
    operator_requires = [
        line for line in _requires(wheel) if 'extra == "operator"' in line or "extra ==" not in line
    ]
    assert operator_requires and not [line for line in operator_requires if "torch" in line], (
        operator_requires
    )


@pytest.mark.slow
def test_trainer_stage_installs_the_api_and_the_trainer_only(tmp_path: Path) -> None:
    wheel = _build_wheel(_context(tmp_path, "trainer-build"), tmp_path / "dist")
    assert _top_level_packages(wheel) == {"specforge_api", "specforge_trainer"}
    entry_points = next(name for name in wheel.namelist() if name.endswith(".dist-info/entry_points.txt"))
    assert "specforge = specforge_trainer.cli:main" in wheel.read(entry_points).decode()
    # The builtin dataset and tokenizer (no download in the pod) must be in the image too.
    bundled = {
        path.relative_to(REPO_ROOT / "trainer").as_posix()
        for path in (REPO_ROOT / "trainer" / "specforge_trainer" / "resources").rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    }
    assert bundled and bundled <= set(wheel.namelist()), bundled - set(wheel.namelist())
