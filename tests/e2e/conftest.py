"""Fixtures for the e2e layer: a real Kubernetes API server for every test under tests/e2e.

The contract other test modules rely on:

- ``kubeconfig`` (session): the path of a kubeconfig. When ``$KUBECONFIG`` is set (a kind cluster, a
  developer's ``make cluster-up``), that cluster is used as is and left alone. Otherwise the local
  control plane (``hack/cluster.sh``: etcd, kube-apiserver, controller-manager, scheduler, KWOK GPU
  nodes, training-operator) is brought up once, under a cluster name private to this test run so two
  runs on one machine never share or tear down each other's cluster, and brought down at the end.
  Either way ``os.environ["KUBECONFIG"]`` is set for the session and the binaries' directory is put
  first on ``PATH``, so ``kubectl`` and ``helm`` in subprocesses talk to the same cluster.
- ``kube_api`` (session): a ``kubernetes.client.ApiClient`` for that cluster.
- ``local_control_plane`` (session): whether that cluster is one hack/cluster.sh made (kwokctl writes
  its ``kwok.yaml`` next to the kubeconfig), as opposed to kind or another real cluster.
- ``cluster_bin_dir()`` / ``cluster_bin_dir`` fixture: where kubectl, helm, kwokctl... live.
- ``namespace`` (function): a fresh namespace, deleted after the test.
- ``wait_for(fetch, what)``: poll until the cluster reaches a state, failing the test with ``what``.

KWOK takes every pod bound to a fake node to Running; pods owned by a Job or a PyTorchJob then go to
Succeeded after a short delay, or to Failed when they carry ``KWOK_FAIL_ANNOTATION``. The delay can be
set per pod with ``KWOK_RUN_DURATION_ANNOTATION`` (a Go duration such as ``"30s"``). Test modules import
these names with ``from e2e.conftest import KWOK_FAIL_ANNOTATION`` (``tests`` is on pytest's pythonpath).

The KWOK nodes carry the taint ``kwok.x-k8s.io/node=fake:NoSchedule`` when the cluster also has a real
node (hack/lib/real-node.sh): pods that do not tolerate it run for real there. A test that means its pods
to be faked by KWOK gives its pod specs ``KWOK_TOLERATIONS`` and ``KWOK_NODE_SELECTOR`` (tolerating alone
still lets the scheduler pick the real node; ``kwok_v1_tolerations()`` for the typed client), or passes a
SpecForgeRun manifest through ``on_kwok_nodes`` (``Runs`` does that by default).
"""

from __future__ import annotations

import copy
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _support.timings import timed_preparation
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK_DIR = REPO_ROOT / "hack"
E2E_DIR = Path(__file__).resolve().parent

# Pod annotations the KWOK stages in hack/kwok/stages.yaml act on.
KWOK_FAIL_ANNOTATION = "specforge.io/kwok-fail"
KWOK_RUN_DURATION_ANNOTATION = "specforge.io/kwok-run-duration"
#: Pod annotations that keep a KWOK pod running for the length of any test.
LONG_RUN = {KWOK_RUN_DURATION_ANNOTATION: "600s"}
# The fake nodes hack/kwok/nodes.yaml creates: two with 8 GPUs each, one CPU-only.
GPU_RESOURCE = "nvidia.com/gpu"
GPUS_PER_GPU_NODE = 8
# Namespace training-operator's webhook certificate secret lives in.
TRAINING_OPERATOR_NAMESPACE = "kubeflow"
# The taint on the KWOK nodes (hack/kwok/nodes.yaml, KWOK's convention) and a toleration of it
# (core/v1 shape, as in pod specs and a run's ``spec.trainer.tolerations``).
KWOK_TAINT_KEY = "kwok.x-k8s.io/node"
KWOK_TAINT_VALUE = "fake"
KWOK_TOLERATIONS: list[dict[str, str]] = [
    {"key": KWOK_TAINT_KEY, "operator": "Equal", "value": KWOK_TAINT_VALUE, "effect": "NoSchedule"}
]
# The label every KWOK node has (hack/kwok/nodes.yaml) and the real node has not.
KWOK_NODE_SELECTOR = {"type": "kwok"}
# The real node (hack/lib/node-env.sh): its name and the label it carries.
REAL_NODE_NAME = "real-node-0"
REAL_NODE_LABEL = "specforge.io/real-node"

T = TypeVar("T")


def wait_for(fetch: Callable[[], T | None], what: str, timeout: float = 60.0, interval: float = 0.5) -> T:
    """Poll ``fetch`` until it returns something truthy; fail the test naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def kwok_v1_tolerations() -> list[k8s_client.V1Toleration]:
    """``KWOK_TOLERATIONS`` for the typed client's ``V1PodSpec``."""
    return [k8s_client.V1Toleration(**toleration) for toleration in KWOK_TOLERATIONS]


def on_kwok_nodes(manifest: dict[str, Any]) -> dict[str, Any]:
    """A copy of a SpecForgeRun manifest whose trainer (and producers, when it has them) tolerate the KWOK
    taint and select KWOK nodes, so its pods are faked by KWOK rather than run on the real node."""
    run = copy.deepcopy(manifest)
    spec = run.setdefault("spec", {})
    for pool in ("trainer", "producers"):
        if pool == "producers" and spec.get(pool) is None:
            continue
        section = spec[pool] = spec.get(pool) or {}
        tolerations = section.setdefault("tolerations", [])
        tolerations.extend(dict(t) for t in KWOK_TOLERATIONS if t not in tolerations)
        section["nodeSelector"] = {**KWOK_NODE_SELECTOR, **(section.get("nodeSelector") or {})}
    return run


@contextmanager
def kwok_only_clusters() -> Iterator[None]:
    """Clusters brought up inside (``hack/cluster.sh up``) get no real node: ``SPECFORGE_REAL_NODE=0``.
    Their KWOK nodes are then untainted, so every pod is faked, as the operator's fault and policy tests
    (private clusters) expect; the session cluster keeps the real node."""
    before = os.environ.get("SPECFORGE_REAL_NODE")
    os.environ["SPECFORGE_REAL_NODE"] = "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["SPECFORGE_REAL_NODE"]
        else:
            os.environ["SPECFORGE_REAL_NODE"] = before


def cluster_bin_dir() -> Path:
    """The directory holding kubectl, helm, kwokctl, etcd... (it may not be built yet)."""
    out = subprocess.run(
        [str(HACK_DIR / "build-binaries.sh"), "--print-bin-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)


def _run_cluster_script(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(HACK_DIR / "cluster.sh"), *args], env=env, capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"hack/cluster.sh {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def _kubeconfig_from_up_output(stdout: str) -> str:
    for line in reversed(stdout.splitlines()):
        if line.startswith("export KUBECONFIG="):
            return line.removeprefix("export KUBECONFIG=").strip()
    raise RuntimeError(f"hack/cluster.sh up printed no 'export KUBECONFIG=' line:\n{stdout}")


@pytest.fixture(scope="session", name="cluster_bin_dir")
def cluster_bin_dir_fixture() -> Path:
    return cluster_bin_dir()


@pytest.fixture(scope="session")
def kubeconfig(cluster_bin_dir: Path) -> Iterator[str]:
    if cluster_bin_dir.is_dir():
        os.environ["PATH"] = f"{cluster_bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    existing = os.environ.get("KUBECONFIG")
    if existing:
        yield existing
        return
    if subprocess.run([str(HACK_DIR / "build-binaries.sh"), "--check"], check=False).returncode != 0:
        pytest.fail(
            "the local control plane's binaries are not built: run `make cluster-binaries` first "
            "(a cold build takes a quarter of an hour, longer than a test may run), or set KUBECONFIG"
        )
    env = {**os.environ, "SPECFORGE_CLUSTER_NAME": f"pytest-{os.getpid()}"}
    with timed_preparation("test cluster up (hack/cluster.sh)"):
        path = _kubeconfig_from_up_output(_run_cluster_script("up", env=env))
    os.environ["KUBECONFIG"] = path
    try:
        yield path
    finally:
        del os.environ["KUBECONFIG"]
        _run_cluster_script("down", env=env)


@pytest.fixture(scope="session")
def local_control_plane(kubeconfig: str) -> bool:
    return Path(kubeconfig).with_name("kwok.yaml").is_file()


@pytest.fixture(scope="session")
def kube_api(kubeconfig: str) -> Iterator[k8s_client.ApiClient]:
    api = k8s_config.new_client_from_config(config_file=kubeconfig)
    try:
        yield api
    finally:
        api.close()


@contextmanager
def fresh_namespace(kube_api: k8s_client.ApiClient, prefix: str = "e2e") -> Iterator[str]:
    """A new namespace named ``<prefix>-<random>``, deleted on exit."""
    core = k8s_client.CoreV1Api(kube_api)
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core.create_namespace(k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def namespace(kube_api: k8s_client.ApiClient) -> Iterator[str]:
    with fresh_namespace(kube_api) as name:
        yield name


@pytest.fixture(scope="session")
def real_node(kube_api: k8s_client.ApiClient) -> str:
    """The name of the cluster's real node. Without one the test is skipped, or failed when
    SPECFORGE_REQUIRE_REAL_NODE=1 (as `make test` sets it)."""
    nodes = k8s_client.CoreV1Api(kube_api).list_node(label_selector=f"{REAL_NODE_LABEL}=true").items
    if not nodes:
        reason = f"the cluster has no node labelled {REAL_NODE_LABEL}=true (no real node)"
        if os.environ.get("SPECFORGE_REQUIRE_REAL_NODE") == "1":
            pytest.fail(reason + "; SPECFORGE_REQUIRE_REAL_NODE=1 requires one")
        pytest.skip(reason)
    return nodes[0].metadata.name


def run_script(*argv: str, timeout: float) -> None:
    """Run a project script; a failure fails the test with the end of its output."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def images_on_node(real_node: str, local_control_plane: bool) -> None:
    """The operator, trainer and Redis images in the real node's containerd (kind: loaded by the script)."""
    if local_control_plane:
        run_script(str(HACK_DIR / "images.sh"), timeout=3600)
