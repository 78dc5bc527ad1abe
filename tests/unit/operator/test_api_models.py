"""The API models accept valid manifests, fill defaults, and reject bad ones naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from _support.manifests import BAD_BOUND_SPECS, BAD_EVALUATION_SPECS, BAD_STORE_SPECS
from specforge_api import DeploymentMode, ManifestError, load_run_manifest, parse_run_manifest
from unit.operator.builders import run_manifest


@pytest.mark.parametrize("mode", list(DeploymentMode))
def test_minimal_manifest_of_each_mode_is_valid(mode: DeploymentMode) -> None:
    run = parse_run_manifest(run_manifest(mode.value))
    assert run.spec.deployment_mode is mode
    assert run.spec.training.epochs == 1
    assert run.spec.feature_store.path == "/features"


def test_durable_mode_without_store_means_managed_redis() -> None:
    run = parse_run_manifest(run_manifest("dataflow_colocated"))
    store = run.spec.effective_metadata_store()
    assert store is not None and store.managed is not None and store.external is None
    assert parse_run_manifest(run_manifest("local_colocated")).spec.effective_metadata_store() is None


def test_integer_quantities_are_read_as_strings() -> None:
    run = parse_run_manifest(run_manifest(trainer={"resources": {"cpu": 2, "memory": "8Gi"}}))
    assert run.spec.trainer.resources.cpu == "2"


def test_wire_form_round_trips() -> None:
    run = parse_run_manifest(run_manifest("disaggregated"))
    assert parse_run_manifest(run.spec_manifest()) == run


EMPTY_DIR = {"volume": {"emptyDir": {}}}
BAD_SPECS = [
    ({"deploymentMode": "hybrid"}, "spec.deploymentMode"),
    ({"trainer": {"replicas": 2}}, "spec.trainer.replicas"),
    ({"metadataStore": {"managed": {}}}, "spec.metadataStore"),
    ({"producers": {"replicas": 1}}, "spec.producers"),
    ({"targetModel": {"builtin": "tiny-llama", "path": "/models/x"}}, "spec.targetModel"),
    ({"dataset": {"path": "relative.jsonl"}}, "spec.dataset.path"),
    ({"training": {"epochs": 0}}, "spec.training.epochs"),
    ({"training": {"learningRate": 0}}, "spec.training.learningRate"),
    ({"training": {"featureMode": "sideways"}}, "spec.training.featureMode"),
    ({"training": {"epoch": 1}}, "spec.training.epoch"),
    ({"trainer": {"resources": {"memory": "lots"}}}, "spec.trainer.resources.memory"),
    ({"checkpoints": {"volume": {"emptyDir": {}, "hostPath": {"path": "/x"}}}}, "spec.checkpoints.volume"),
    (
        {"deploymentMode": "dataflow_colocated", "trainer": {"replicas": 2}, "featureStore": EMPTY_DIR},
        "spec.featureStore.volume",
    ),
    ({"deploymentMode": "dataflow_colocated", "checkpoints": EMPTY_DIR}, "spec.checkpoints.volume"),
    (
        {"deploymentMode": "dataflow_colocated", "training": {"featureMode": "online"}},
        "spec.training.featureMode",
    ),
    *BAD_EVALUATION_SPECS,
    *BAD_STORE_SPECS,
    *BAD_BOUND_SPECS,
]


@pytest.mark.parametrize(
    ("spec", "field"), BAD_SPECS, ids=[f"{i}-{field}" for i, (_, field) in enumerate(BAD_SPECS)]
)
def test_bad_manifest_error_names_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_run_manifest(run_manifest(**spec))
    paths = [path for path, _ in caught.value.problems]
    assert any(path == field or path.startswith(f"{field}.") for path in paths), caught.value.problems
    assert field in str(caught.value)


def test_disaggregated_needs_producers() -> None:
    manifest = run_manifest("disaggregated")
    del manifest["spec"]["producers"]
    with pytest.raises(ManifestError, match=r"spec\.producers: disaggregated mode needs producers"):
        parse_run_manifest(manifest)


def test_run_name_must_fit_child_names() -> None:
    with pytest.raises(ManifestError, match=r"metadata\.name"):
        parse_run_manifest(run_manifest(name="x" * 41))


def test_load_run_manifest_reads_one_document(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(run_manifest()))
    assert load_run_manifest(path).name == "demo"
    path.write_text(yaml.safe_dump(run_manifest()) + "---\n" + yaml.safe_dump(run_manifest()))
    with pytest.raises(ManifestError, match="exactly one YAML document"):
        load_run_manifest(path)
    with pytest.raises(ManifestError, match="<file>"):
        load_run_manifest(tmp_path / "missing.yaml")


def test_one_trainer_replica_of_a_durable_run_may_keep_features_in_an_empty_dir() -> None:
    run = parse_run_manifest(run_manifest("dataflow_colocated", featureStore=EMPTY_DIR))
    assert run.spec.feature_store.volume is not None
