"""Rendered Deployment, ServiceAccount, metrics Service, ServiceMonitor and peering objects: secure
defaults, the right operator command line per mode, and nothing empty rendered."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from integration.chart.helm_render import CHART_DIR, RELEASE_NAMESPACE, Manifests, RenderError, kinds, only
from specforge_api.spec import SpecForgeRunSpec
from specforge_operator.crd import structural_schema

APP_VERSION = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"]
STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
}

LEGITIMATELY_EMPTY = re.compile(r"(emptyDir|apiGroups\[\d+\])$")


def container(manifests: Manifests) -> dict[str, Any]:
    (operator,) = only(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return operator


def _empty_values(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        found = [path] if not node and path else []
        return found + [p for key, value in node.items() for p in _empty_values(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [p for index, value in enumerate(node) for p in _empty_values(value, f"{path}[{index}]")]
    return [path] if node is None or node == "" else []


def test_default_render_kinds_labels_and_no_empty_fields(render: Callable[..., Manifests]) -> None:
    manifests = render()
    assert kinds(manifests) == [
        "ClusterKopfPeering",
        "ClusterRole",  # the operator's
        "ClusterRole",  # the users' editor (aggregated into edit/admin)
        "ClusterRole",  # the users' viewer (aggregated into view)
        "ClusterRoleBinding",
        "CustomResourceDefinition",  # SpecForgeRun, from templates/ so helm upgrade updates it
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",  # hostPath volumes refused (hostPathVolumes.allowed=false)
        "ValidatingAdmissionPolicyBinding",
    ]
    cluster_scoped = (
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterKopfPeering",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    )
    for doc in manifests:
        assert set(doc["metadata"]["labels"]) >= STANDARD_LABELS, doc["kind"]
        # emptyDir: {} and the core API group "" are legitimately empty.
        if (
            doc["kind"] != "CustomResourceDefinition"
        ):  # generated: its `default: {}` and `status: {}` mean something
            assert [p for p in _empty_values(doc) if not LEGITIMATELY_EMPTY.search(p)] == [], doc["kind"]
        if doc["kind"] not in cluster_scoped:
            assert doc["metadata"]["namespace"] == RELEASE_NAMESPACE


def test_deployment_is_hardened(render: Callable[..., Manifests]) -> None:
    manifests = render()
    pod = only(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert container(manifests)["securityContext"] == {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["serviceAccountName"] == "sf-specforge-operator"
    assert {"name": "tmp", "mountPath": "/tmp"} in container(manifests)["volumeMounts"]


def test_deployment_defaults_two_peered_replicas_with_probes_and_resources(
    render: Callable[..., Manifests],
) -> None:
    manifests = render()
    deployment = only(manifests, "Deployment")
    operator = container(manifests)
    assert deployment["spec"]["replicas"] == 2
    assert operator["image"] == f"ghcr.io/specforge-k8s/operator:{APP_VERSION}"
    assert operator["command"] == ["python", "-m", "specforge_operator"]
    assert operator["args"] == [
        "--all-namespaces",
        "--peering=specforge-operator",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert operator[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert operator["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert operator["resources"]["limits"] == {"memory": "512Mi"}
    env = {item["name"]: item["value"] for item in operator["env"]}
    assert env == {
        "SPECFORGE_RESYNC_SECONDS": "60",
        "SPECFORGE_WORKERS": "8",
        "SPECFORGE_PEERING_LIFETIME_SECONDS": "10",
        "SPECFORGE_METRICS_PORT": "9090",
        "SPECFORGE_TRAINER_BACKEND": "pytorchjob",
    }
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_namespaced_mode_passes_each_namespace_and_makes_a_peering_in_each(
    render: Callable[..., Manifests],
) -> None:
    manifests = render(
        {
            "watch": {"namespaces": ["team-a", "team-b"]},
            "image": {"tag": "9.9.9", "repository": "r/op", "pullPolicy": "Always"},
        }
    )
    operator = container(manifests)
    assert operator["args"][:3] == [
        "--namespace=team-a",
        "--namespace=team-b",
        "--peering=specforge-operator",
    ]
    assert operator["image"] == "r/op:9.9.9"
    assert operator["imagePullPolicy"] == "Always"
    peerings = [doc for doc in manifests if doc["kind"] == "KopfPeering"]
    assert sorted(doc["metadata"]["namespace"] for doc in peerings) == ["team-a", "team-b"]
    assert "ClusterKopfPeering" not in kinds(manifests)


def test_single_standalone_replica(render: Callable[..., Manifests]) -> None:
    manifests = render({"replicaCount": 1, "peering": {"enabled": False}})
    assert "--standalone" in container(manifests)["args"]
    assert only(manifests, "Deployment")["spec"]["replicas"] == 1


def test_metrics_service_and_optional_service_monitor(render: Callable[..., Manifests]) -> None:
    manifests = render()
    service = only(manifests, "Service")
    assert service["spec"]["selector"] == only(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert "ServiceMonitor" not in kinds(manifests)
    monitored = render(
        {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}, "interval": "15s"}}}
    )
    monitor = only(monitored, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "15s"}]
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]


def test_metrics_disabled_removes_service_port_and_env(render: Callable[..., Manifests]) -> None:
    manifests = render({"metrics": {"enabled": False}})
    assert "Service" not in kinds(manifests)
    operator = container(manifests)
    assert [port["name"] for port in operator["ports"]] == ["health"]
    assert "SPECFORGE_METRICS_PORT" not in {item["name"] for item in operator["env"]}


def test_existing_service_account(render: Callable[..., Manifests]) -> None:
    manifests = render({"serviceAccount": {"create": False, "name": "ops-bot"}})
    assert "ServiceAccount" not in kinds(manifests)
    assert only(manifests, "ClusterRoleBinding")["subjects"][0]["name"] == "ops-bot"
    assert only(manifests, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops-bot"


def test_pod_placement_and_metadata_values_are_passed_through(render: Callable[..., Manifests]) -> None:
    values = {
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "ops", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}
                    ]
                }
            }
        },
        "priorityClassName": "system-cluster-critical",
        "podAnnotations": {"a": "b"},
        "podLabels": {"team": "ml"},
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"annotations": {"iam": "role"}},
    }
    manifests = render(values)
    template = only(manifests, "Deployment")["spec"]["template"]
    for key in ("nodeSelector", "tolerations", "affinity", "priorityClassName", "imagePullSecrets"):
        assert template["spec"][key] == values[key]
    assert template["metadata"]["annotations"] == {"a": "b"}
    assert template["metadata"]["labels"]["team"] == "ml"
    assert only(manifests, "ServiceAccount")["metadata"]["annotations"] == {"iam": "role"}


def test_the_default_trainer_backend_reaches_the_operator(render: Callable[..., Manifests]) -> None:
    env = {e["name"]: e["value"] for e in container(render({"trainerBackend": "jobset"}))["env"]}
    assert env["SPECFORGE_TRAINER_BACKEND"] == "jobset"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2, "peering": {"enabled": False}}, "replicaCount > 1 needs peering.enabled=true"),
        ({"metrics": {"port": 8080}}, "metrics.port and probes.port must differ"),
        (
            {"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}},
            "serviceMonitor.enabled needs metrics.enabled",
        ),
        ({"serviceAccount": {"create": False}}, "serviceAccount.name is required"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
        ({"image": {"tag": "1", "registry": "x"}}, "additional properties 'registry' not allowed"),
        ({"watch": {"namespaces": ["Team_A"]}}, "does not match pattern"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"probes": {"port": 0}}, "minimum"),
        ({"trainerBackend": "trainjob"}, "trainerBackend"),
    ],
)
def test_bad_values_fail_the_render_with_a_clear_message(
    render: Callable[..., Manifests], values: dict[str, Any], message: str
) -> None:
    with pytest.raises(RenderError, match=message):
        render(values)


def test_disruption_budget_keeps_a_standby_through_drains(render: Callable[..., Manifests]) -> None:
    manifests = render()
    budget = only(manifests, "PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert (
        budget["spec"]["selector"]["matchLabels"]
        == only(manifests, "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert "PodDisruptionBudget" not in kinds(render({"replicaCount": 1, "peering": {"enabled": False}}))
    assert "PodDisruptionBudget" not in kinds(render({"podDisruptionBudget": {"enabled": False}}))


def test_user_roles_aggregate_into_edit_and_view_and_can_be_left_out(
    render: Callable[..., Manifests],
) -> None:
    manifests = render()
    editor = only(manifests, "ClusterRole", "sf-specforge-operator-editor")
    viewer = only(manifests, "ClusterRole", "sf-specforge-operator-viewer")
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert {verb for rule in viewer["rules"] for verb in rule["verbs"]} == {"get", "list", "watch"}
    status = [rule for rule in editor["rules"] if rule["resources"] == ["specforgeruns/status"]]
    assert status == [
        {"apiGroups": ["specforge.io"], "resources": ["specforgeruns/status"], "verbs": ["get"]}
    ]
    without = render({"rbac": {"aggregateToDefaultRoles": False}})
    assert [doc["metadata"]["name"] for doc in without if doc["kind"] == "ClusterRole"] == [
        "sf-specforge-operator"
    ]


def test_host_path_policy_covers_every_volume_field_and_follows_the_watched_namespaces(
    render: Callable[..., Manifests],
) -> None:
    policy = only(render(), "ValidatingAdmissionPolicy")
    checked = [validation["message"].split(":")[0] for validation in policy["spec"]["validations"]]
    # Every place the CRD accepts a hostPath is checked, found in the generated schema itself.
    assert sorted(checked) == sorted(_host_path_fields(structural_schema(SpecForgeRunSpec), "spec"))
    assert "matchResources" not in only(render(), "ValidatingAdmissionPolicyBinding")["spec"]
    scoped = only(render({"watch": {"namespaces": ["team-a"]}}), "ValidatingAdmissionPolicyBinding")
    selector = scoped["spec"]["matchResources"]["namespaceSelector"]["matchExpressions"]
    assert selector == [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a"]}]
    allowed = render({"hostPathVolumes": {"allowed": True}})
    assert not [doc for doc in allowed if doc["kind"].startswith("ValidatingAdmissionPolicy")]


def _host_path_fields(schema: dict, path: str) -> list[str]:
    found = []
    for name, child in (schema.get("properties") or {}).items():
        if name == "hostPath":
            found.append(f"{path}.hostPath")
        else:
            found += _host_path_fields(child, f"{path}.{name}")
    if "items" in schema:
        found += _host_path_fields(schema["items"], f"{path}[]")
    return found
