"""The chart's RBAC, rendered: exactly what the operator's code uses, nothing cluster-wide beyond kopf's
start-up reads when restricted to namespaces, no wildcards, and enough to grant the trainer's progress Role
(RBAC refuses to let a subject grant what it does not hold)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from integration.chart.helm_render import RELEASE_NAMESPACE, Manifests, kinds, only
from specforge_operator.kube import RESOURCE_PLURALS
from specforge_operator.render.config import progress_rbac
from unit.operator.builders import build_run

# Verbs the reconciler's KubeApi uses on each child: apply (patch), create, get, list (prune) and delete.
CHILD_VERBS = {"get", "list", "create", "patch", "delete"}
# Kinds kopf watches by the run label (handlers.child_changed) need watch as well.
WATCHED = {("batch", "jobs"), ("kubeflow.org", "pytorchjobs"), ("apps", "deployments"), ("", "configmaps")}
DISCOVERY = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}


def granted(rules: Iterable[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) → verbs, over rules without resourceNames (those grant less)."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        if rule.get("resourceNames"):
            continue
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def _group(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def test_no_wildcards_anywhere(render: Callable[..., Manifests]) -> None:
    for values in ({}, {"watch": {"namespaces": ["team-a"]}}):
        for doc in render(values):
            for rule in doc.get("rules", []):
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[key], f"{doc['kind']} {doc['metadata']['name']}: wildcard in {key}"


def test_cluster_wide_role_covers_every_child_kind_the_operator_manages(
    render: Callable[..., Manifests],
) -> None:
    manifests = render()
    rules = granted(only(manifests, "ClusterRole")["rules"])
    for (api_version, kind), plural in RESOURCE_PLURALS.items():
        key = (_group(api_version), plural)
        if kind == "Pod":
            assert rules[key] == {"list"}, "pods are only listed, for failure reasons"
        elif kind == "SpecForgeRun":
            # read and watched, finalizer/annotations patched, deleted by its TTL (policies/ttl.py)
            assert rules[key] == {"get", "list", "watch", "patch", "delete"}
        else:
            expected = CHILD_VERBS | ({"watch"} if key in WATCHED else set())
            assert rules[key] == expected, f"{kind}: {sorted(rules[key])}"
    assert rules[("specforge.io", "specforgeruns/status")] == {"get", "patch"}
    assert rules[("", "events")] == {"create", "patch"}
    for key in DISCOVERY:
        assert rules[key] == {"list", "watch"}
    assert "update" not in set().union(*rules.values()), "server-side apply needs patch, never update"
    binding = only(manifests, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sf-specforge-operator", "namespace": RELEASE_NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == "sf-specforge-operator"


def test_operator_holds_everything_it_grants_to_trainers(render: Callable[..., Manifests]) -> None:
    rules = granted(only(render(), "ClusterRole")["rules"])
    role = next(doc for doc in progress_rbac(build_run()) if doc["kind"] == "Role")
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert set(rule["verbs"]) <= rules.get((group, resource), set()), (group, resource)


def test_namespaced_mode_has_a_role_per_namespace_and_no_cluster_wide_access_to_objects(
    render: Callable[..., Manifests],
) -> None:
    manifests = render({"watch": {"namespaces": ["team-a", "team-b"]}})
    cluster_rules = granted(only(manifests, "ClusterRole")["rules"])
    assert set(cluster_rules) == DISCOVERY, "only kopf's start-up reads are cluster-wide"
    default_rules = granted(only(render(), "ClusterRole")["rules"])
    for namespace in ("team-a", "team-b"):
        role = only(manifests, "Role", namespace=namespace)
        namespaced = granted(role["rules"])
        assert set(namespaced) | DISCOVERY == set(default_rules) - {("kopf.dev", "clusterkopfpeerings")} | {
            ("kopf.dev", "kopfpeerings")
        }
        binding = only(manifests, "RoleBinding", namespace=namespace)
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"][0]["namespace"] == RELEASE_NAMESPACE
    assert kinds(manifests).count("Role") == 2


@pytest.mark.parametrize(
    ("values", "resource"),
    [({}, "clusterkopfpeerings"), ({"watch": {"namespaces": ["team-a"]}}, "kopfpeerings")],
)
def test_peering_patch_is_limited_to_the_releases_peering_object(
    render: Callable[..., Manifests], values: dict[str, Any], resource: str
) -> None:
    manifests = render(values)
    role = only(manifests, "Role" if values else "ClusterRole")
    named = [rule for rule in role["rules"] if rule.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["kopf.dev"],
            "resources": [resource],
            "resourceNames": ["specforge-operator"],
            "verbs": ["get", "patch"],
        }
    ]
    assert granted(role["rules"])[("kopf.dev", resource)] == {"list", "watch"}


def test_peering_disabled_drops_peering_rules_and_objects(render: Callable[..., Manifests]) -> None:
    manifests = render({"replicaCount": 1, "peering": {"enabled": False}})
    assert not [doc for doc in manifests if doc["apiVersion"].startswith("kopf.dev")]
    assert not any(group == "kopf.dev" for group, _ in granted(only(manifests, "ClusterRole")["rules"]))


def test_rbac_create_false_renders_no_rbac(render: Callable[..., Manifests]) -> None:
    manifests = render({"rbac": {"create": False}})
    assert not {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} & set(kinds(manifests))
