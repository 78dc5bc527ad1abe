"""The chart's RBAC, rendered: exactly what the operator's code uses, nothing cluster-wide beyond kopf's
start-up reads when restricted to namespaces, no wildcards, and enough to grant the trainer's progress Role
(RBAC refuses to let a subject grant what it does not hold)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from _support.operator_rbac import KOPF_DISCOVERY, operator_rules
from integration.chart.helm_render import OPERATOR_ROLE, RELEASE_NAMESPACE, Manifests, kinds, only
from specforge_operator.render.config import progress_rbac
from unit.operator.builders import build_run

DISCOVERY = set(KOPF_DISCOVERY)


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


def test_no_wildcards_anywhere(render: Callable[..., Manifests]) -> None:
    for values in ({}, {"watch": {"namespaces": ["team-a"]}}):
        for doc in render(values):
            for rule in doc.get("rules", []):
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[key], f"{doc['kind']} {doc['metadata']['name']}: wildcard in {key}"


def _object_rules(manifests: Manifests) -> dict[tuple[str, str], set[str]]:
    """The ClusterRole's grants on objects: without kopf's start-up reads and peering (tested below)."""
    rules = granted(only(manifests, "ClusterRole", OPERATOR_ROLE)["rules"])
    return {key: verbs for key, verbs in rules.items() if key not in DISCOVERY and key[0] != "kopf.dev"}


def test_cluster_role_grants_every_verb_the_operator_calls(render: Callable[..., Manifests]) -> None:
    rules = _object_rules(render())
    # The peering object is read (resync loop) and patched (kopf) by name: its named grant is tested below.
    needed = {key: verbs for key, verbs in operator_rules().items() if key[0] != "kopf.dev"}
    missing = {key: verbs - rules.get(key, set()) for key, verbs in needed.items()}
    assert {key: sorted(verbs) for key, verbs in missing.items() if verbs} == {}, (
        "the operator would be Forbidden"
    )
    for key, verbs in KOPF_DISCOVERY.items():
        assert granted(only(render(), "ClusterRole", OPERATOR_ROLE)["rules"])[key] == verbs


def test_cluster_role_grants_no_verb_the_operator_does_not_call(render: Callable[..., Manifests]) -> None:
    needed = operator_rules()
    extra = {key: sorted(verbs - needed.get(key, set())) for key, verbs in _object_rules(render()).items()}
    extra = {key: verbs for key, verbs in extra.items() if verbs}
    assert extra == {}, "granted but never called: least privilege"


def test_cluster_role_binds_the_charts_service_account_and_never_grants_update(
    render: Callable[..., Manifests],
) -> None:
    manifests = render()
    rules = granted(only(manifests, "ClusterRole", OPERATOR_ROLE)["rules"])
    assert "update" not in set().union(*rules.values()), "server-side apply needs patch, never update"
    binding = only(manifests, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "sf-specforge-operator", "namespace": RELEASE_NAMESPACE}
    ]
    assert binding["roleRef"]["name"] == "sf-specforge-operator"


def test_operator_holds_everything_it_grants_to_trainers(render: Callable[..., Manifests]) -> None:
    rules = granted(only(render(), "ClusterRole", OPERATOR_ROLE)["rules"])
    role = next(doc for doc in progress_rbac(build_run()) if doc["kind"] == "Role")
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert set(rule["verbs"]) <= rules.get((group, resource), set()), (group, resource)


def test_namespaced_mode_has_a_role_per_namespace_and_no_cluster_wide_access_to_objects(
    render: Callable[..., Manifests],
) -> None:
    manifests = render({"watch": {"namespaces": ["team-a", "team-b"]}})
    cluster_rules = granted(only(manifests, "ClusterRole", OPERATOR_ROLE)["rules"])
    assert set(cluster_rules) == DISCOVERY, "only kopf's start-up reads are cluster-wide"
    default_rules = granted(only(render(), "ClusterRole", OPERATOR_ROLE)["rules"])
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
    role = only(manifests, "Role" if values else "ClusterRole", OPERATOR_ROLE)
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
    assert not any(
        group == "kopf.dev" for group, _ in granted(only(manifests, "ClusterRole", OPERATOR_ROLE)["rules"])
    )


def test_rbac_create_false_renders_no_rbac(render: Callable[..., Manifests]) -> None:
    manifests = render({"rbac": {"create": False}})
    assert not {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} & set(kinds(manifests))
