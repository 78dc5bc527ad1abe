"""The checked-in CRD is exactly what the API models generate, and it is a usable structural schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import Field
from specforge_api.base import ApiModel
from specforge_operator import crd

REPO_ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = REPO_ROOT / "crds" / crd.CRD_FILE_NAME


def test_checked_in_crd_matches_generated() -> None:
    assert CHECKED_IN.read_text() == crd.render_crd_yaml(), "crds/ is stale: run `make crds`"


def test_check_mode_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text(crd.render_crd_yaml().replace("maxLength: 512", "maxLength: 513", 1))
    assert crd.main(["--check", str(stale)]) == 1
    stale.write_text(crd.render_crd_yaml())
    assert crd.main(["--check", str(stale)]) == 0


def _walk(schema: dict[str, Any], path: str = ""):
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _walk(schema[key], f"{path}[]")


def _root_schema() -> dict[str, Any]:
    return crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_schema_is_structural_and_described() -> None:
    for path, node in _walk(_root_schema()):
        assert "$ref" not in node and "title" not in node, path
        if path != ".metadata" and (not path.endswith("[]") or node.get("type") == "object"):
            assert node.get("description"), f"{path} has no description"
        if "anyOf" not in node:
            assert "type" in node, f"{path} has no type"
        if "default" in node:
            assert node["default"] is not None, path


def test_schema_carries_bounds_enums_defaults_and_cel() -> None:
    spec = _root_schema()["properties"]["spec"]
    mode = spec["properties"]["deploymentMode"]
    assert mode["enum"] == ["local_colocated", "dataflow_colocated", "disaggregated"]
    assert mode["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    training = spec["properties"]["training"]["properties"]
    assert training["epochs"] == {**training["epochs"], "minimum": 1, "default": 1}
    assert training["learningRate"]["exclusiveMinimum"] is True
    rules = [rule["rule"] for rule in spec["x-kubernetes-validations"]]
    assert "self.deploymentMode != 'local_colocated' || self.trainer.replicas == 1" in rules
    assert spec["properties"]["featureStore"]["default"] == {
        "claim": {"accessModes": ["ReadWriteOnce"], "size": "10Gi"},
        "path": "/features",
    }
    assert spec["required"] == ["deploymentMode", "targetModel", "dataset"]


def test_every_spec_field_is_bounded() -> None:
    """So a manifest the API server accepts is one the operator can render: no number, string, list or
    map of any size. Affinity alone passes through below its three kinds (the API server validates the
    pods' affinity when the workload creates them)."""
    unbounded = []
    for path, node in _walk(_root_schema()["properties"]["spec"], ".spec"):
        kind = node.get("type")
        if node.get("x-kubernetes-preserve-unknown-fields"):
            if not path.endswith(("Affinity", "affinity")):
                unbounded.append(f"{path}: passed through")
        elif kind == "integer" and "maximum" not in node:
            unbounded.append(f"{path}: no maximum")
        elif (kind == "string" or "x-kubernetes-int-or-string" in node) and not (
            "maxLength" in node or "enum" in node
        ):
            unbounded.append(f"{path}: no maxLength")
        elif kind == "array" and "maxItems" not in node:
            unbounded.append(f"{path}: no maxItems")
        elif isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(f"{path}: no maxProperties")
    assert not unbounded, unbounded


def test_printer_columns_and_status_subresource() -> None:
    version = crd.build_crd()["spec"]["versions"][0]
    assert [column["name"] for column in version["additionalPrinterColumns"]] == [
        "Mode",
        "Phase",
        "GPUs",
        "Step",
        "Loss",
        "Stage",
        "Accept",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    status = _root_schema()["properties"]["status"]
    assert all("default" not in node for _, node in _walk(status))


def test_undescribed_field_fails_generation() -> None:
    class Careless(ApiModel):
        described: int = Field(default=1, description="has one")
        undescribed: int = 2

    with pytest.raises(crd.SchemaError, match="undescribed"):
        crd.structural_schema(Careless)
