"""The API server itself rejects malformed runs (schema bounds, enums, CEL rules from the generated CRD),
with a message naming the field, and refuses to change ``deploymentMode``. No operator is needed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from _support.manifests import BAD_BOUND_SPECS, BAD_EVALUATION_SPECS, BAD_STORE_SPECS, minimal_run
from e2e.specforgerun.conftest import GROUP, PLURAL, VERSION
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

VALID = minimal_run("bad")
HOST_FEATURES = {"volume": {"hostPath": {"path": "/tmp/features"}}}
EMPTY_DIR = {"volume": {"emptyDir": {}}}

# (case id, spec changes (None deletes a key), the field the error must name)
MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("unknown-mode", {"deploymentMode": "hybrid"}, "spec.deploymentMode"),
    ("no-target-model", {"targetModel": None}, "spec.targetModel"),
    (
        "two-model-sources",
        {"targetModel": {"builtin": "tiny-llama", "path": "/models/x"}},
        "spec.targetModel",
    ),
    ("unknown-builtin-model", {"targetModel": {"builtin": "gpt-5"}}, "spec.targetModel.builtin"),
    ("relative-dataset-path", {"dataset": {"path": "data.jsonl"}}, "spec.dataset.path"),
    ("zero-epochs", {"training": {"epochs": 0}}, "spec.training.epochs"),
    ("zero-learning-rate", {"training": {"learningRate": 0}}, "spec.training.learningRate"),
    ("huge-learning-rate", {"training": {"learningRate": 2}}, "spec.training.learningRate"),
    ("zero-batch", {"training": {"batchSize": 0}}, "spec.training.batchSize"),
    ("zero-ttt", {"training": {"tttLength": 0}}, "spec.training.tttLength"),
    ("short-max-length", {"training": {"maxLength": 8}}, "spec.training.maxLength"),
    ("unknown-feature-mode", {"training": {"featureMode": "sideways"}}, "spec.training.featureMode"),
    ("training-not-an-object", {"training": "fast"}, "spec.training"),
    ("zero-replicas", {"trainer": {"replicas": 0}}, "spec.trainer.replicas"),
    ("too-many-gpus", {"trainer": {"gpusPerReplica": 17}}, "spec.trainer.gpusPerReplica"),
    ("bad-memory", {"trainer": {"resources": {"memory": "lots"}}}, "spec.trainer.resources.memory"),
    (
        "bad-toleration",
        {"trainer": {"tolerations": [{"operator": "Maybe"}]}},
        "spec.trainer.tolerations[0].operator",
    ),
    ("local-two-replicas", {"trainer": {"replicas": 2}}, "spec.trainer.replicas"),
    ("local-with-store", {"metadataStore": {"managed": {}}}, "spec.metadataStore"),
    ("colocated-with-producers", {"deploymentMode": "dataflow_colocated", "producers": {}}, "spec.producers"),
    (
        "disaggregated-no-producers",
        {"deploymentMode": "disaggregated", "featureStore": HOST_FEATURES},
        "spec.producers",
    ),
    (
        "disaggregated-emptydir-features",
        {"deploymentMode": "disaggregated", "producers": {}, "featureStore": EMPTY_DIR},
        "spec.featureStore.volume",
    ),
    (
        "dataflow-two-ranks-emptydir-features",
        {"deploymentMode": "dataflow_colocated", "trainer": {"replicas": 2}, "featureStore": EMPTY_DIR},
        "spec.featureStore.volume",
    ),
    (
        "durable-online-features",
        {"deploymentMode": "dataflow_colocated", "training": {"featureMode": "online"}},
        "spec.training.featureMode",
    ),
    (
        "durable-emptydir-checkpoints",
        {"deploymentMode": "dataflow_colocated", "checkpoints": EMPTY_DIR},
        "spec.checkpoints.volume",
    ),
    (
        "two-stores",
        {
            "deploymentMode": "dataflow_colocated",
            "metadataStore": {"managed": {}, "external": {"url": "redis://r:6379/0"}},
        },
        "spec.metadataStore",
    ),
    (
        "store-url-not-redis",
        {"deploymentMode": "dataflow_colocated", "metadataStore": {"external": {"url": "http://r:6379"}}},
        "spec.metadataStore.external.url",
    ),
    (
        "two-volume-kinds",
        {"checkpoints": {"volume": {"emptyDir": {}, "hostPath": {"path": "/x"}}}},
        "spec.checkpoints.volume",
    ),
    ("bad-pull-policy", {"imagePullPolicy": "Sometimes"}, "spec.imagePullPolicy"),
    ("negative-backoff", {"runPolicy": {"backoffLimit": -1}}, "spec.runPolicy.backoffLimit"),
    ("zero-deadline", {"runPolicy": {"activeDeadlineSeconds": 0}}, "spec.runPolicy.activeDeadlineSeconds"),
    # Pod overrides that would break the pod contract.
    (
        "reserved-env-name",
        {"trainer": {"env": [{"name": "SPECFORGE_METADATA_URL", "value": "redis://elsewhere:6379/0"}]}},
        "spec.trainer.env",
    ),
    ("rank-env-name", {"trainer": {"env": [{"name": "RANK", "value": "3"}]}}, "spec.trainer.env"),
    (
        "env-value-and-secret",
        {
            "trainer": {
                "env": [
                    {
                        "name": "HF_TOKEN",
                        "value": "x",
                        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}},
                    }
                ]
            }
        },
        "spec.trainer.env[0]",
    ),
    (
        "reserved-volume-name",
        {"trainer": {"volumes": [{"name": "config", "emptyDir": {}}]}},
        "spec.trainer.volumes",
    ),
    (
        "mount-over-the-run-config",
        {
            "trainer": {
                "volumes": [{"name": "extra", "emptyDir": {}}],
                "volumeMounts": [{"name": "extra", "mountPath": "/etc/specforge"}],
            }
        },
        "spec.trainer.volumeMounts",
    ),
    (
        "mount-over-checkpoints",
        {
            "trainer": {
                "volumes": [{"name": "extra", "emptyDir": {}}],
                "volumeMounts": [{"name": "extra", "mountPath": "/checkpoints"}],
            }
        },
        "spec.trainer.volumeMounts",
    ),
    (
        "mount-of-unknown-volume",
        {"trainer": {"volumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}},
        "spec.trainer.volumeMounts",
    ),
    (
        "selector-label-override",
        {"trainer": {"podLabels": {"specforge.io/run": "someone-else"}}},
        "spec.trainer.podLabels",
    ),
    (
        "root-user",
        {"trainer": {"securityContext": {"runAsUser": 0}}},
        "spec.trainer.securityContext.runAsUser",
    ),
    (
        "accelerator-not-a-resource-name",
        {"trainer": {"acceleratorResource": "gpu"}},
        "spec.trainer.acceleratorResource",
    ),
    (
        "store-reserved-env",
        {
            "deploymentMode": "dataflow_colocated",
            "metadataStore": {"managed": {"env": [{"name": "SPECFORGE_RUN_NAME", "value": "x"}]}},
        },
        "spec.metadataStore.managed.env",
    ),
    *((f"evaluation-{index}", changes, field) for index, (changes, field) in enumerate(BAD_EVALUATION_SPECS)),
    *(
        (f"store-url-credentials-{index}", changes, field)
        for index, (changes, field) in enumerate(BAD_STORE_SPECS)
    ),
    *((f"bounds-{index}", changes, field) for index, (changes, field) in enumerate(BAD_BOUND_SPECS)),
]


def _manifest(changes: dict[str, Any], name: str = "bad") -> dict[str, Any]:
    manifest = copy.deepcopy(VALID)
    manifest["metadata"]["name"] = name
    for key, value in changes.items():
        if value is None:
            manifest["spec"].pop(key, None)
        else:
            manifest["spec"][key] = value
    return manifest


def _rejection(api: k8s_client.CustomObjectsApi, namespace: str, manifest: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    assert caught.value.status == 422, caught.value.body
    return json.loads(caught.value.body)["message"]


@pytest.mark.parametrize(
    ("changes", "field"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED]
)
def test_malformed_run_is_rejected_naming_the_field(
    kube_api: k8s_client.ApiClient, crd_installed: str, namespace: str, changes: dict[str, Any], field: str
) -> None:
    message = _rejection(k8s_client.CustomObjectsApi(kube_api), namespace, _manifest(changes))
    assert field in message, message


def test_run_name_that_cannot_prefix_children_is_rejected(
    kube_api: k8s_client.ApiClient, crd_installed: str, namespace: str
) -> None:
    message = _rejection(k8s_client.CustomObjectsApi(kube_api), namespace, _manifest({}, name="x" * 41))
    assert "metadata.name" in message, message


def test_the_valid_baseline_is_accepted_and_defaulted(
    kube_api: k8s_client.ApiClient, crd_installed: str, namespace: str
) -> None:
    api = k8s_client.CustomObjectsApi(kube_api)
    created = api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, _manifest({}, name="fine")
    )
    assert created["spec"]["training"]["epochs"] == 1
    assert created["spec"]["featureStore"] == {
        "path": "/features",
        "claim": {"size": "10Gi", "accessModes": ["ReadWriteOnce"]},
    }


def test_deployment_mode_is_immutable(
    kube_api: k8s_client.ApiClient, crd_installed: str, namespace: str
) -> None:
    api = k8s_client.CustomObjectsApi(kube_api)
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, _manifest({}, name="fixed"))
    with pytest.raises(ApiException) as caught:
        api.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            "fixed",
            {"spec": {"deploymentMode": "dataflow_colocated", "metadataStore": None}},
        )
    assert caught.value.status == 422
    assert "deploymentMode is immutable" in json.loads(caught.value.body)["message"]
