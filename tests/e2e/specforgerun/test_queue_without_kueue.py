"""A run that names a Kueue queue on a cluster without Kueue says what to install, in a condition and
one event, instead of waiting silently for an admission that never comes; once Kueue's API is served
(here: its LocalQueue CRD alone, enough for discovery) the condition turns True without touching the run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _support.manifests import minimal_run
from _support.operator_process import OperatorProcess
from e2e.specforgerun.conftest import Runs, condition, wait_for
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.slow

LOCAL_QUEUE_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "localqueues.kueue.x-k8s.io"},
    "spec": {
        "group": "kueue.x-k8s.io",
        "names": {"kind": "LocalQueue", "plural": "localqueues", "singular": "localqueue"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
            }
        ],
    },
}


@pytest.fixture
def kueue_crd(kube_api: k8s_client.ApiClient) -> Iterator[k8s_client.ApiextensionsV1Api]:
    extensions = k8s_client.ApiextensionsV1Api(kube_api)
    try:
        yield extensions
    finally:
        try:
            extensions.delete_custom_resource_definition(LOCAL_QUEUE_CRD["metadata"]["name"])
        except ApiException as error:
            if error.status != 404:
                raise


def _controller_condition(runs: Runs, status: str) -> dict:
    def reported() -> dict | None:
        found = condition(runs.get("queued"), "QueueControllerAvailable")
        return found if found and found["status"] == status else None

    # The operator caches discovery for 30 s.
    return wait_for(reported, f"QueueControllerAvailable={status}", timeout=90)


def test_a_queue_label_without_kueue_names_what_to_install_until_kueue_is_served(
    runs: Runs, operator_process: OperatorProcess, kueue_crd: k8s_client.ApiextensionsV1Api
) -> None:
    try:
        kueue_crd.read_custom_resource_definition(LOCAL_QUEUE_CRD["metadata"]["name"])
        pytest.skip("this cluster serves Kueue already")
    except ApiException as error:
        if error.status != 404:
            raise
    runs.create(minimal_run("queued", scheduling={"queueName": "team-a"}))
    missing = _controller_condition(runs, "False")
    assert missing["reason"] == "KueueNotInstalled" and "install Kueue" in missing["message"], missing
    assert "KueueNotInstalled" in runs.warning_reasons("queued", "KueueNotInstalled")
    waiting = condition(runs.get("queued"), "QueueAdmitted")
    assert waiting is not None and waiting["reason"] == "WaitingForQueueAdmission", waiting

    kueue_crd.create_custom_resource_definition(LOCAL_QUEUE_CRD)
    served = _controller_condition(runs, "True")
    assert served["reason"] == "KueueServed", served
