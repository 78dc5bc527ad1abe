"""A small typed-dict Kubernetes client: server-side apply, get, create, list, delete, status merge-patch.

Built on the ``kubernetes`` package's ApiClient (auth, TLS, kubeconfig) but talking in plain dicts, so
rendered manifests go out exactly as rendered and come back as the API server stored them. Every write
uses one field manager, which is what makes a second reconcile a no-op.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from specforge_api.run import API_VERSION, KIND, PLURAL

from specforge_operator.render.meta import FIELD_MANAGER

# (apiVersion, kind) → plural, for every kind the operator reads or writes.
RESOURCE_PLURALS: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "ServiceAccount"): "serviceaccounts",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("v1", "Pod"): "pods",
    ("apps/v1", "Deployment"): "deployments",
    ("networking.k8s.io/v1", "NetworkPolicy"): "networkpolicies",
    ("batch/v1", "Job"): "jobs",
    ("rbac.authorization.k8s.io/v1", "Role"): "roles",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "rolebindings",
    ("kubeflow.org/v1", "PyTorchJob"): "pytorchjobs",
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): "jobsets",
    (API_VERSION, KIND): PLURAL,
}
# kopf's peering objects: read (never owned by a run, so never pruned) by the resync loop to tell whether
# this replica is the active one.
PEERING_PLURALS: dict[tuple[str, str], str] = {
    ("kopf.dev/v1", "ClusterKopfPeering"): "clusterkopfpeerings",
    ("kopf.dev/v1", "KopfPeering"): "kopfpeerings",
}
# How long a discovery answer (is this workload API served?) is trusted: a CRD installed later is seen soon.
DISCOVERY_TTL_SECONDS = 30.0
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
MERGE_PATCH_CONTENT_TYPE = "application/merge-patch+json"


def load_api_client() -> k8s_client.ApiClient:
    """In-cluster credentials when running in a pod, else the current kubeconfig ($KUBECONFIG)."""
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    return k8s_client.ApiClient()


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    """The collection's URL path; an empty ``namespace`` means every namespace (or a cluster-scoped kind)."""
    try:
        plural = {**RESOURCE_PLURALS, **PEERING_PLURALS}[(api_version, kind)]
    except KeyError:
        raise ValueError(f"the operator does not manage {kind} ({api_version})") from None
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


class KubeApi:
    def __init__(self, api_client: k8s_client.ApiClient) -> None:
        self._api = api_client
        self._served: dict[tuple[str, str], tuple[bool, float]] = {}

    def _call(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        """:meth:`_request`'s body alone."""
        return self._request(method, path, **request)[1]

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self._api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(method, url, header_params=headers, body=body)
        response.read()
        if not 200 <= response.status <= 299:
            text = response.data.decode(errors="replace") if response.data else ""
            raise ApiException.from_response(http_resp=response, body=text, data=None)
        return response.status, json.loads(response.data) if response.data else {}

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply under the operator's field manager, taking over conflicting fields."""
        return self.apply_reporting_creation(manifest)[0]

    def apply_reporting_creation(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """:meth:`apply`, also saying whether the object was created by it (HTTP 201) rather than updated."""
        meta = manifest["metadata"]
        path = (
            f"{collection_path(manifest['apiVersion'], manifest['kind'], meta['namespace'])}/{meta['name']}"
        )
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        status, applied = self._request(
            "PATCH", path, body=manifest, query=query, content_type=APPLY_CONTENT_TYPE
        )
        return applied, status == 201

    def create(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Create, or return None when the object already exists."""
        meta = manifest["metadata"]
        path = collection_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
        try:
            return self._call("POST", path, body=manifest, query=[("fieldManager", FIELD_MANAGER)])
        except ApiException as error:
            if error.status == 409:
                return None
            raise

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"{collection_path(api_version, kind, namespace)}/{name}")
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """The objects matching the selector; none when the API server does not serve the kind at all."""
        path = collection_path(api_version, kind, namespace)
        try:
            found: list[dict[str, Any]] = self._call(
                "GET", path, query=[("labelSelector", label_selector)]
            ).get("items", [])
            return found
        except ApiException as error:
            if error.status == 404:  # e.g. the pruner listing PyTorchJobs on a cluster with only JobSet
                return []
            raise

    def serves(self, api_version: str, kind: str) -> bool:
        """Whether the API server serves ``kind`` in ``api_version`` (discovery, cached for a while)."""
        now = time.monotonic()
        cached = self._served.get((api_version, kind))
        if cached is not None and now - cached[1] < DISCOVERY_TTL_SECONDS:
            return cached[0]
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            resources = self._call("GET", prefix).get("resources", [])
        except ApiException as error:
            if error.status != 404:
                raise
            resources = []
        served = any(resource.get("kind") == kind for resource in resources)
        self._served[(api_version, kind)] = (served, now)
        return served

    def delete(
        self, api_version: str, kind: str, namespace: str, name: str, *, propagation: str = "Background"
    ) -> None:
        try:
            self._call(
                "DELETE",
                f"{collection_path(api_version, kind, namespace)}/{name}",
                body={"propagationPolicy": propagation},
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def patch_run_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        path = f"{collection_path(API_VERSION, KIND, namespace)}/{name}/status"
        return self._call("PATCH", path, body={"status": status}, content_type=MERGE_PATCH_CONTENT_TYPE)

    def annotate_run(self, namespace: str, name: str, annotations: dict[str, str]) -> dict[str, Any]:
        path = f"{collection_path(API_VERSION, KIND, namespace)}/{name}"
        body = {"metadata": {"annotations": annotations}}
        return self._call("PATCH", path, body=body, content_type=MERGE_PATCH_CONTENT_TYPE)


def api_error_message(error: ApiException) -> str:
    """The API server's own words for a refusal (its Status ``message``), else the HTTP reason."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return f"{error.status} {error.reason}: {message}" if message else f"{error.status} {error.reason}"
