"""Render the operator chart with the real ``helm template`` (built by ``make cluster-binaries``, which
``make test`` and ``make chart-test`` run first) and parse the documents; helpers to pick from them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.conftest import cluster_bin_dir

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = REPO_ROOT / "charts" / "specforge-operator"
RELEASE, RELEASE_NAMESPACE = "sf", "specforge-system"
# The operator's own ClusterRole (the chart also ships the users' editor/viewer ClusterRoles).
OPERATOR_ROLE = f"{RELEASE}-specforge-operator"

Manifests = list[dict[str, Any]]


class RenderError(Exception):
    """``helm template`` refused the values; the message is helm's."""


def helm_binary() -> str:
    built = cluster_bin_dir() / "helm"
    if built.is_file():
        return str(built)
    found = shutil.which("helm")
    if found is None:
        pytest.fail(f"helm not found at {built} nor on PATH: run `make cluster-binaries` (make test does)")
    return found


def render_chart(values: dict[str, Any], tmp_path: Path, *extra: str) -> Manifests:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = subprocess.run(
        [
            helm_binary(),
            "template",
            RELEASE,
            str(CHART_DIR),
            "--namespace",
            RELEASE_NAMESPACE,
            "-f",
            str(values_file),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RenderError(result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def only(
    manifests: Manifests, kind: str, name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    found = [
        doc
        for doc in manifests
        if doc["kind"] == kind
        and (name is None or doc["metadata"]["name"] == name)
        and (namespace is None or doc["metadata"].get("namespace") == namespace)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(manifests: Manifests) -> list[str]:
    return sorted(doc["kind"] for doc in manifests)
