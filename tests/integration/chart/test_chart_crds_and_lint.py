"""The chart ships the generated CRD byte for byte (``make crds`` writes both copies) and passes
``helm lint --strict`` in both RBAC modes; the spec reference under docs/ is the generated one too."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from integration.chart.helm_render import CHART_DIR, REPO_ROOT, Manifests, helm_binary
from specforge_operator.crd import CRD_FILE_NAME, render_crd_yaml
from specforge_operator.spec_reference import render_reference


def test_chart_crd_is_the_generated_one() -> None:
    chart_copy = CHART_DIR / "files" / CRD_FILE_NAME
    assert chart_copy.read_text() == render_crd_yaml(), f"{chart_copy} is stale: run `make crds`"


def test_the_run_crd_is_a_template_so_helm_upgrade_updates_it(render: Callable[..., Manifests]) -> None:
    """Helm installs crds/ once and never upgrades it; the SpecForgeRun CRD is rendered from templates/
    (crds.enabled), the generated schema unchanged, kept on uninstall unless crds.keep is false."""
    (crd,) = [doc for doc in render() if doc["kind"] == "CustomResourceDefinition"]
    generated = yaml.safe_load(render_crd_yaml())
    assert crd["spec"] == generated["spec"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "specforge-k8s"
    assert (
        "annotations"
        not in next(
            doc for doc in render({"crds": {"keep": False}}) if doc["kind"] == "CustomResourceDefinition"
        )["metadata"]
    )
    assert not [
        doc for doc in render({"crds": {"enabled": False}}) if doc["kind"] == "CustomResourceDefinition"
    ]
    assert not (CHART_DIR / "crds" / CRD_FILE_NAME).exists(), (
        "in crds/ too, helm install would create it twice"
    )


def test_chart_installs_the_crds_it_needs(render: Callable[..., Manifests]) -> None:
    crds = {
        doc["metadata"]["name"]
        for doc in render({}, "--include-crds")
        if doc["kind"] == "CustomResourceDefinition"
    }
    assert crds == {"specforgeruns.specforge.io", "clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}


def test_kopf_peering_crds_keep_the_status_kopf_writes() -> None:
    for doc in yaml.safe_load_all((CHART_DIR / "crds" / "kopf.dev-peerings.yaml").read_text()):
        status = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True


@pytest.mark.parametrize("extra", [[], ["--set", "watch.namespaces={team-a,team-b}"]])
def test_helm_lint_strict_is_clean(extra: list[str]) -> None:
    result = subprocess.run(
        [helm_binary(), "lint", "--strict", str(CHART_DIR), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


def test_spec_reference_is_the_generated_one() -> None:
    committed = REPO_ROOT / "docs" / "spec-reference.md"
    assert committed.read_text() == render_reference(), f"{committed} is stale: run `make docs`"


def test_every_value_is_commented() -> None:
    """Each key values.schema.json declares has a comment on the line above it in values.yaml (the contents
    of free-form values such as ``resources`` are example data, not keys of the chart)."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, dict[str, Any]]] = [(-1, schema)]  # (indent, schema of the mapping at that depth)
    uncommented = []
    for index, line in enumerate(lines):
        match = re.match(r"^(\s*)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if "properties" not in parent:
            continue  # inside a free-form value
        node = parent["properties"][key]
        node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else node
        stack.append((indent, node))
        if not (index and lines[index - 1].strip().startswith("#")):
            uncommented.append(f"line {index + 1}: {line.strip()}")
    assert not uncommented, "\n".join(uncommented)
