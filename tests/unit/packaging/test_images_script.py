"""hack/images.sh (buildah, for the local real node) and hack/e2e-kind.sh (Docker, for kind) build the
Dockerfile's targets under the names the chart and the run CRD default to: checked by reading the
scripts, without buildah or Docker."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import yaml
from _support.dockerfile import dockerfile_stages
from specforge_api.pod_contract import REDIS_UID
from specforge_api.spec import ManagedRedis, SpecForgeRunSpec

REPO_ROOT = Path(__file__).resolve().parents[3]
HACK_DIR = REPO_ROOT / "hack"
DOCKERFILE = REPO_ROOT / "Dockerfile"
IMAGES_SH = HACK_DIR / "images.sh"


def _final_targets() -> set[str]:
    """Stages that run something and that no other stage builds on or copies from."""
    stages = dockerfile_stages()
    used = {lines[0].removeprefix("FROM ") for lines in stages.values()}
    used |= {
        m.group(1)
        for lines in stages.values()
        for line in lines
        for m in [re.search(r"--from=(\S+)", line)]
        if m
    }
    return {
        name
        for name, lines in stages.items()
        if name not in used and any(line.startswith("ENTRYPOINT") for line in lines)
    }


def _base_arg() -> str:
    (match,) = re.findall(r"^FROM \$\{(\w+)\} AS base$", DOCKERFILE.read_text(), re.MULTILINE)
    return match


def _node_env() -> dict[str, str]:
    names = ("OPERATOR_IMAGE", "TRAINER_IMAGE", "REDIS_IMAGE", "BASE_IMAGE", "REAL_NODE_LABEL")
    script = f'HACK_DIR={shlex.quote(str(HACK_DIR))}; source "$HACK_DIR/lib/node-env.sh"; ' + "; ".join(
        f'echo "{name}=${name}"' for name in names
    )
    out = subprocess.run(
        ["bash", "-c", script], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def _docker_normalized(image: str) -> str:
    first, _, rest = image.partition("/")
    if not rest:
        return f"docker.io/library/{image}"
    return image if ("." in first or ":" in first or first == "localhost") else f"docker.io/{image}"


def test_both_scripts_build_the_dockerfile_targets_on_its_base_arg() -> None:
    targets = _final_targets()
    assert targets == {"operator", "trainer"}
    script = IMAGES_SH.read_text()
    (images,) = re.findall(r"^ALL_IMAGES=\((.*)\)$", script, re.MULTILINE)
    assert targets <= set(images.split())
    (dockerfile_targets,) = re.findall(r"^\s*([\w| ]+)\) build_target ", script, re.MULTILINE)
    assert {name.strip() for name in dockerfile_targets.split("|")} == targets
    assert '--target "$1"' in script
    assert f'--build-arg "{_base_arg()}=$BASE_IMAGE"' in script
    kind = (HACK_DIR / "e2e-kind.sh").read_text()
    for target in targets:
        assert f'docker build --target {target} -t "${target.upper()}_IMAGE"' in kind, target
        assert f'{target}) echo "${target.upper()}_IMAGE"' in script, target


def test_images_script_hashes_everything_the_dockerfile_copies() -> None:
    script = IMAGES_SH.read_text()
    (hashed,) = re.findall(r"^\s*hash_files (Dockerfile .*)$", script, re.MULTILINE)
    stages = dockerfile_stages()
    for target in _final_targets():
        inputs = {word.strip('"').replace("$1", target) for word in hashed.split()}
        copied = set()
        stage = f"{target}-build"
        while stage in stages:
            copied |= {
                source.rstrip("/")
                for line in stages[stage]
                if line.startswith("COPY ") and "--from=" not in line
                for source in line.split()[1:-1]
            }
            stage = stages[stage][0].removeprefix("FROM ")
        assert copied, target
        assert copied | {"Dockerfile", ".dockerignore"} <= inputs, copied - inputs


def test_image_names_are_the_chart_and_crd_defaults() -> None:
    names = _node_env()
    chart = yaml.safe_load((REPO_ROOT / "charts/specforge-operator/Chart.yaml").read_text())
    values = yaml.safe_load((REPO_ROOT / "charts/specforge-operator/values.yaml").read_text())
    assert names["OPERATOR_IMAGE"] == f"{values['image']['repository']}:{chart['appVersion']}"
    assert names["TRAINER_IMAGE"] == SpecForgeRunSpec.model_fields["image"].default
    assert names["REDIS_IMAGE"] == _docker_normalized(ManagedRedis.model_fields["image"].default)


def test_redis_image_runs_as_the_uid_the_operator_sets() -> None:
    text = (HACK_DIR / "redis.Containerfile").read_text()
    assert f"USER {REDIS_UID}:{REDIS_UID}" in text
    assert f"chown {REDIS_UID}:{REDIS_UID} /data" in text
    assert "redis-server" in text


def test_images_script_help_needs_neither_root_nor_buildah() -> None:
    result = subprocess.run(
        ["bash", str(IMAGES_SH), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    for name in ("BASE_IMAGE", "REDIS_IMAGE", "OPERATOR_IMAGE", "TRAINER_IMAGE", "--import-only"):
        assert name in result.stdout
