"""The RBAC derivation (tests/_support/operator_rbac.py) the chart's RBAC test relies on: a KubeApi call
added anywhere in the operator shows up with the verb the API server will authorize it against, and a
call whose kinds it cannot tell fails loudly instead of being left out."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from _support.operator_rbac import UnresolvedCallError, issue, kube_api_rules


def _module(tmp_path: Path, source: str) -> ModuleType:
    path = tmp_path / "caller.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location("caller", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_new_call_appears_with_its_verb(tmp_path: Path) -> None:
    module = _module(
        tmp_path,
        """
        JOBS = [("batch/v1", "Job")]

        class Caller:
            def act(self):
                self._kube.delete("v1", "Pod", "ns", "x")
                for api_version, kind in JOBS:
                    self._kube.list(api_version, kind, "ns", "a=b")
                self._kube.patch_run_status("ns", "x", {})
        """,
    )
    assert kube_api_rules(iter([module])) == {
        ("", "pods"): {"delete"},
        ("batch", "jobs"): {"list"},
        ("specforge.io", "specforgeruns/status"): {"patch"},
    }


def test_server_side_apply_needs_create_as_well_as_patch() -> None:
    # The API server authorizes an apply that creates the object as a create.
    assert issue("apply", ("apps/v1", "Deployment")) == {("apps", "deployments"): {"patch", "create"}}
    assert issue("get", ("v1", "ConfigMap")) == {("", "configmaps"): {"get"}}
    assert issue("create", ("v1", "Secret")) == {("", "secrets"): {"create"}}


def test_a_call_whose_kinds_cannot_be_told_fails_naming_its_line(tmp_path: Path) -> None:
    module = _module(
        tmp_path,
        """
        class Caller:
            def act(self, kind):
                self._kube.get("v1", kind, "ns", "x")
        """,
    )
    with pytest.raises(UnresolvedCallError, match=r"caller\.py:4"):
        kube_api_rules(iter([module]))


def test_every_call_in_the_operator_resolves() -> None:
    rules = kube_api_rules()
    assert rules[("specforge.io", "specforgeruns/status")] == {"patch"}
    assert rules[("", "pods")] == {"list"}
