"""The RBAC the operator needs, derived from the calls its code makes rather than written down by hand.

Three things talk to the API server as the operator, and each is read from the product itself:

* its own client, :class:`~specforge_operator.kube.KubeApi`: every call site in ``specforge_operator``
  is found in the source, the kinds it names are resolved (literals, module constants, loops over
  them, and — for calls on rendered manifests — every kind the plan renders for the examples and
  each deployment mode), and each call is then issued through a real ``KubeApi`` whose transport
  records the HTTP request instead of sending it. The request is authorized as the API server does:
  GET on an object is ``get``, on a collection ``list`` (``watch`` with ``watch=true``), POST ``create``,
  PATCH ``patch`` (a server-side apply may also create the object, so it needs ``create`` too), PUT
  ``update``, DELETE ``delete``;
* kopf, through the handlers it registered: a watched resource needs ``list`` and ``watch``; a resource
  with changing handlers or timers is also patched (kopf's finalizer and progress annotations); a
  handler module that calls ``kopf.event`` posts Events (``create``);
* the Role the operator renders for trainer pods: RBAC lets a subject grant only what it holds.

A call site whose kinds cannot be resolved fails the derivation, naming the file and line, so a new call
is never silently left out.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import specforge_operator
import yaml
from kubernetes import client as k8s_client
from specforge_api import DeploymentMode, SpecForgeRun, parse_run_manifest
from specforge_api.run import KIND
from specforge_api.spec import TrainerBackend
from specforge_operator import kube
from specforge_operator.plan import plan_children
from specforge_operator.render.config import progress_rbac
from specforge_operator.render.store import redis_auth_secret
from unit.operator.builders import build_run

REPO_ROOT = Path(__file__).resolve().parents[2]
Kind = tuple[str, str]  # (apiVersion, kind)
Rules = dict[tuple[str, str], set[str]]  # (apiGroup, resource) → verbs

# kopf's own start-up reads, made by its resource scanner (kopf/_cogs/clients/scanning.py) before any
# handler runs: the CRDs it serves and the namespaces it may watch.
KOPF_DISCOVERY: Rules = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("", "namespaces"): {"list", "watch"},
}


class UnresolvedCallError(AssertionError):
    """A KubeApi call site names kinds the derivation cannot resolve."""


@dataclass(frozen=True)
class CallSite:
    module: ModuleType
    method: str
    node: ast.Call
    function: ast.AST  # the enclosing function (where loop variables are bound)

    @property
    def where(self) -> str:
        return f"{Path(self.module.__file__ or '').name}:{self.node.lineno}"


# -- what a request needs --------------------------------------------------------------------------------
class _Recorded:
    status, data = 200, b"{}"

    def read(self) -> None:
        return None


class RecordingApiClient(k8s_client.ApiClient):
    """A real ApiClient (same request serialization) whose transport records instead of sending."""

    def __init__(self) -> None:
        super().__init__(k8s_client.Configuration(host="https://recorded.invalid"))
        self.requests: list[tuple[str, str, str | None]] = []  # (method, url, content type)

    def call_api(self, method: str, url: str, header_params: Any = None, *_: Any, **__: Any) -> Any:  # type: ignore[override]
        self.requests.append((method, url, (header_params or {}).get("Content-Type")))
        return _Recorded()


def authorized_as(method: str, url: str, content_type: str | None) -> tuple[tuple[str, str], set[str]]:
    """The (apiGroup, resource) and verbs the API server authorizes a request against."""
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    if segments[0] == "api":  # /api/v1/namespaces/NS/RESOURCE[/NAME[/SUB]]
        group, rest = "", segments[2:]
    else:  # /apis/GROUP/VERSION/namespaces/NS/RESOURCE[/NAME[/SUB]]
        group, rest = segments[1], segments[3:]
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    resource, named = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else ""), len(rest) > 1
    if method == "GET":
        verbs = {"get"} if named else {"watch" if parse_qs(parts.query).get("watch") == ["true"] else "list"}
    elif method == "PATCH":
        verbs = {"patch", "create"} if content_type == kube.APPLY_CONTENT_TYPE else {"patch"}
    else:
        verbs = {
            "POST": {"create"},
            "PUT": {"update"},
            "DELETE": {"delete" if named else "deletecollection"},
        }[method]
    return (group, resource), verbs


def _is_discovery(url: str) -> bool:
    segments = urlsplit(url).path.strip("/").split("/")
    return (segments[0] == "api" and len(segments) <= 2) or (segments[0] == "apis" and len(segments) <= 3)


def _kube_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(kube.KubeApi, inspect.isfunction)
        if not name.startswith("_")
    }


def issue(method: str, kind: Kind | None) -> Rules:
    """Call ``KubeApi.<method>`` on ``kind`` through a recording transport; what it was authorized for."""
    api_version, kind_name = kind or ("", "")
    manifest = {"apiVersion": api_version, "kind": kind_name, "metadata": {"name": "x", "namespace": "ns"}}
    by_name = {
        "manifest": manifest,
        "api_version": api_version,
        "kind": kind_name,
        "namespace": "ns",
        "name": "x",
        "label_selector": "a=b",
        "status": {},
        "annotations": {},
    }
    signature = _kube_methods()[method]
    params = [p for p in signature.parameters.values() if p.name != "self" and p.default is p.empty]
    unknown = [p.name for p in params if p.name not in by_name]
    if unknown:
        raise UnresolvedCallError(f"KubeApi.{method}: the derivation cannot fill parameters {unknown}")
    api = RecordingApiClient()
    getattr(kube.KubeApi(api), method)(*[by_name[p.name] for p in params])
    rules: Rules = {}
    for request in api.requests:
        if _is_discovery(request[1]):  # /apis/GROUP/VERSION: every authenticated user may read it
            continue
        key, verbs = authorized_as(*request)
        rules.setdefault(key, set()).update(verbs)
    return rules


# -- which kinds a call site names ------------------------------------------------------------------------
def _runs() -> list[SpecForgeRun]:
    """The examples, and a default run of every deployment mode (managed store with auth where it has one)."""
    runs = [
        parse_run_manifest({**doc, "metadata": {**doc["metadata"], "uid": "uid-1"}}, str(path))
        for path in sorted((REPO_ROOT / "examples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") == KIND
    ]
    every_backend = [
        build_run(mode.value, trainer={"backend": backend.value})
        for mode in DeploymentMode
        if mode.durable
        for backend in TrainerBackend
    ]
    return runs + [build_run(mode.value) for mode in DeploymentMode] + every_backend


def rendered_kinds() -> set[Kind]:
    """Every kind the plan may apply for some run (store ready or not), and the generated password Secret."""
    kinds: set[Kind] = set()
    for run in _runs():
        plan = plan_children(run, finished=False)
        kinds |= {(m["apiVersion"], m["kind"]) for m in plan.rendered}
        if plan.auth_secret:
            secret = redis_auth_secret(run, "x")
            kinds.add((secret["apiVersion"], secret["kind"]))
    return kinds


def trainer_workload_keys() -> set[tuple[str, ...]]:
    return {plan_children(run, finished=False).trainer_key for run in _runs()}


# Expressions (as ast.unparse writes them) that stand for rendered objects, and what they range over.
SOURCE_VALUES: dict[str, Callable[[], set[Any]]] = {
    "child_key(manifest)[:2]": rendered_kinds,
    "manifest": rendered_kinds,
    "with_suspend(manifest, ownership)": rendered_kinds,
    "secret": rendered_kinds,
    "redis_auth_secret(run, password)": rendered_kinds,
    "(manifest['apiVersion'], kind)": rendered_kinds,
    "plan.trainer_key": trainer_workload_keys,
    "(plan.workload.api_version, plan.workload.kind)": lambda: {key[:2] for key in trainer_workload_keys()},
}


def _constant(module: ModuleType, node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and hasattr(module, node.id):
        return getattr(module, node.id)
    raise KeyError(ast.unparse(node))


def _bound_values(site: CallSite, names: list[str]) -> set[tuple[Any, ...]]:
    """What the tuple of local ``names`` ranges over, from the ``for`` or assignment that binds them."""
    for node in ast.walk(site.function):
        if isinstance(node, ast.For):
            target, source, many = node.target, node.iter, True
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, source, many = node.targets[0], node.value, False
        else:
            continue
        if not isinstance(target, ast.Tuple) or not all(isinstance(e, ast.Name) for e in target.elts):
            continue
        bound = [e.id for e in target.elts if isinstance(e, ast.Name)]
        if not set(names) <= set(bound):
            continue
        text = ast.unparse(source)
        if text in SOURCE_VALUES:
            values = SOURCE_VALUES[text]()
        else:
            value = _constant(site.module, source)
            values = set(value) if many else {value}
        return {tuple(v[bound.index(n)] for n in names) for v in values}
    raise KeyError(", ".join(names))


def kinds_of(site: CallSite) -> set[Kind] | None:
    """The kinds ``site`` may name; None for a method whose path names no kind (the run's status)."""
    params = [p for p in _kube_methods()[site.method].parameters if p != "self"]
    args = site.node.args
    try:
        if params[0] == "manifest":
            return set(SOURCE_VALUES[ast.unparse(args[0])]())
        if params[:2] != ["api_version", "kind"]:
            return None
        if isinstance(args[0], ast.Starred):
            return set(SOURCE_VALUES[ast.unparse(args[0].value)]())
        pair = ast.unparse(ast.Tuple(elts=args[:2]))
        if pair in SOURCE_VALUES:
            return set(SOURCE_VALUES[pair]())
        try:
            return {(_constant(site.module, args[0]), _constant(site.module, args[1]))}
        except KeyError:
            names = [a.id for a in args[:2] if isinstance(a, ast.Name)]
            if len(names) != 2:
                raise
            return {(str(v[0]), str(v[1])) for v in _bound_values(site, names)}
    except (KeyError, IndexError) as unknown:
        raise UnresolvedCallError(
            f"{site.where}: cannot tell which kinds KubeApi.{site.method}({ast.unparse(args[0]) if args else ''}"
            f", ...) names ({unknown}); teach tests/_support/operator_rbac.py"
        ) from None


def _modules() -> Iterator[ModuleType]:
    for info in pkgutil.walk_packages(specforge_operator.__path__, "specforge_operator."):
        if info.name != kube.__name__:
            yield importlib.import_module(info.name)


def call_sites(module: ModuleType) -> Iterator[CallSite]:
    """Calls of KubeApi's public methods on a receiver named after it (``self._kube``, ``memo.kube``)."""
    methods = _kube_methods()
    tree = ast.parse(inspect.getsource(module))
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in methods
                and ast.unparse(node.func.value).split(".")[-1].lstrip("_") == "kube"
            ):
                yield CallSite(module, node.func.attr, node, function)


def _merge(into: Rules, more: Rules) -> None:
    for key, verbs in more.items():
        into.setdefault(key, set()).update(verbs)


def kube_api_rules(modules: Iterator[ModuleType] | None = None) -> Rules:
    rules: Rules = {}
    for module in modules if modules is not None else _modules():
        for site in call_sites(module):
            kinds = kinds_of(site)
            for kind in sorted(kinds) if kinds is not None else [None]:
                try:
                    _merge(rules, issue(site.method, kind))
                except ValueError as error:  # kube.py has no path for the kind
                    raise UnresolvedCallError(
                        f"{site.where}: KubeApi.{site.method} on {kind}: {error}"
                    ) from None
    return rules


def kopf_rules() -> Rules:
    """What kopf does for the handlers ``specforge_operator.handlers`` registers."""
    from kopf._core.intents.registries import get_default_registry

    handlers = importlib.import_module("specforge_operator.handlers")
    registry = get_default_registry()
    rules: Rules = {}

    def resource(selector: Any) -> tuple[str, str]:
        return selector.group or "", selector.any_name

    for watched in (registry._watching, registry._changing, registry._spawning, registry._indexing):
        for handler in watched.get_all_handlers():
            rules.setdefault(resource(handler.selector), set()).update({"list", "watch"})
    for patched in (registry._changing, registry._spawning):  # finalizer, progress annotations
        for handler in patched.get_all_handlers():
            rules[resource(handler.selector)].add("patch")
    if "kopf.event(" in inspect.getsource(handlers):
        rules.setdefault(("", "events"), set()).add("create")
    return rules


def granted_to_trainers() -> Rules:
    rules: Rules = {}
    for run in _runs():
        for doc in progress_rbac(run):
            for rule in doc.get("rules", []):
                for group in rule["apiGroups"]:
                    for res in rule["resources"]:
                        rules.setdefault((group, res), set()).update(rule["verbs"])
    return rules


def operator_rules() -> Rules:
    """Everything the operator's identity must hold in a watched namespace (besides kopf's peering)."""
    rules: Rules = {}
    for part in (kube_api_rules(), kopf_rules(), granted_to_trainers()):
        _merge(rules, part)
    return rules
