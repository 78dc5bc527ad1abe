"""A private control plane and operator replicas for the operator's fault and policy e2e tests.

These tests kill operators, restart kube-apiserver and need to know which replica acted, so they cannot
share the session cluster with tests whose operator (an all-namespaces standalone replica) stays up for
the whole session and would act on their runs too. Each module brings up its own cluster from the same
binaries (``hack/cluster.sh up`` under a private ``SPECFORGE_CLUSTER_NAME``, about 15 s) and takes it
down at the end, so restarting its kube-apiserver disturbs nobody.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.operator_process import OperatorProcess
from e2e.conftest import HACK_DIR
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

REPO_ROOT = HACK_DIR.parent
CRD_FILES = [
    REPO_ROOT / "crds" / "specforgeruns.specforge.io.yaml",
    REPO_ROOT / "charts" / "specforge-operator" / "crds" / "kopf.dev-peerings.yaml",
]
PEERING_NAME = "specforge-e2e"


class PrivateCluster:
    """One local control plane owned by one test module."""

    def __init__(self, name: str, **env: str) -> None:
        """``env``: more settings for hack/cluster.sh, e.g. SPECFORGE_TRAINING_OPERATOR="0"."""
        self.env = {**os.environ, "SPECFORGE_CLUSTER_NAME": name, **env}
        self.env.pop("KUBECONFIG", None)
        self.kubeconfig = ""

    def _script(self, action: str) -> str:
        result = subprocess.run(
            [str(HACK_DIR / "cluster.sh"), action], env=self.env, capture_output=True, text=True, timeout=600
        )
        if result.returncode != 0:
            raise RuntimeError(f"hack/cluster.sh {action} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def up(self) -> None:
        line = next(
            line
            for line in reversed(self._script("up").splitlines())
            if line.startswith("export KUBECONFIG=")
        )
        self.kubeconfig = line.removeprefix("export KUBECONFIG=").strip()

    def down(self) -> None:
        state_dir = str(self.state_dir)
        self._script("down")
        # `down` must leave no process behind, restarted components included
        left = subprocess.run(["pgrep", "-af", state_dir], capture_output=True, text=True).stdout.strip()
        assert not left, f"processes left after hack/cluster.sh down:\n{left}"

    @property
    def state_dir(self) -> Path:
        return Path(self.kubeconfig).parent

    def api_client(self) -> k8s_client.ApiClient:
        return k8s_config.new_client_from_config(config_file=self.kubeconfig)

    def _component_pid_files(self) -> list[Path]:
        """Every process of the cluster: kwokctl's components and our training-operator."""
        return [
            *sorted((self.state_dir / "pids").glob("*.pid")),
            self.state_dir / "training-operator" / "pid",
        ]

    def restart_apiserver(self, down_seconds: float = 3.0) -> None:
        """SIGKILL kube-apiserver, keep it down a moment, start it again with the same command line.

        Components that lose their leader lease meanwhile exit (kube-controller-manager, the scheduler):
        on a real control plane the kubelet restarts them, here this does, from their own command lines.
        """
        snapshots = {path: _snapshot(path) for path in self._component_pid_files()}
        apiserver = self.state_dir / "pids" / "kube-apiserver.pid"
        pid = int(apiserver.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        while Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid):
            time.sleep(0.05)
        time.sleep(down_seconds)
        _respawn(apiserver, snapshots[apiserver], self.state_dir / "logs" / "kube-apiserver.log")
        self.wait_ready()
        time.sleep(15)  # longer than a leader lease's renew deadline: whoever lost it has exited by now
        for path, snapshot in snapshots.items():
            if snapshot is not None and not _alive(int(path.read_text().strip())):
                _respawn(path, snapshot, path.parent.parent / "logs" / f"{path.stem}.restarted.log")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the API server serves the SpecForgeRun resource (it answers /version much earlier)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with self.api_client() as api:
                    k8s_client.CustomObjectsApi(api).list_cluster_custom_object(
                        "specforge.io", "v1alpha1", "specforgeruns", limit=1
                    )
                    return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


Snapshot = tuple[list[str], str]  # argv, working directory


def _snapshot(pid_file: Path) -> Snapshot | None:
    try:
        pid = int(pid_file.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        return [arg.decode() for arg in argv], os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in _proc_state(pid)


def _respawn(pid_file: Path, snapshot: Snapshot | None, log_path: Path) -> None:
    assert snapshot is not None, f"no command line recorded for {pid_file}"
    argv, cwd = snapshot
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    threading.Thread(target=process.wait, daemon=True).start()  # reap it when `cluster.sh down` stops it
    pid_file.write_text(f"{process.pid}\n")


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "zombie"


@contextmanager
def private_cluster(module: str, **env: str) -> Iterator[PrivateCluster]:
    if subprocess.run([str(HACK_DIR / "build-binaries.sh"), "--check"], check=False).returncode != 0:
        pytest.fail("the local control plane's binaries are not built: run `make cluster-binaries` first")
    cluster = PrivateCluster(f"{module}-{os.getpid()}", **env)
    try:
        cluster.up()
        install_crds(cluster)
        yield cluster
    finally:
        cluster.down()


def install_crds(cluster: PrivateCluster) -> None:
    with cluster.api_client() as api:
        extensions = k8s_client.ApiextensionsV1Api(api)
        names = []
        for path in CRD_FILES:
            for body in yaml.safe_load_all(path.read_text()):
                if body:
                    extensions.create_custom_resource_definition(body)
                    names.append(body["metadata"]["name"])
        for name in names:
            _wait(
                lambda name=name: any(
                    c.type == "Established" and c.status == "True"
                    for c in extensions.read_custom_resource_definition(name).status.conditions or []
                ),
                f"CRD {name} established",
            )
        custom = k8s_client.CustomObjectsApi(api)
        custom.create_cluster_custom_object(
            "kopf.dev",
            "v1",
            "clusterkopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING_NAME}},
        )


def _wait(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


def start_operator(
    cluster: PrivateCluster,
    log_dir: Path,
    *,
    priority: int | None = None,
    resync_seconds: float = 3.0,
    workers: int = 8,
    wait_live: bool = True,
    env: dict[str, str] | None = None,
) -> OperatorProcess:
    """An operator replica on the private cluster; with ``priority`` it joins the e2e peering."""
    scope: tuple[str, ...] = ("--all-namespaces",)
    if priority is not None:
        scope += (f"--peering={PEERING_NAME}", f"--priority={priority}")
    process = OperatorProcess(
        cluster.kubeconfig,
        log_dir / f"operator-{uuid.uuid4().hex[:6]}.log",
        resync_seconds=resync_seconds,
        workers=workers,
        scope_args=scope,
        extra_env={"SPECFORGE_PEERING_LIFETIME_SECONDS": "10", **(env or {})},
    )
    if wait_live:
        process.wait_live()
    return process


def logged_lines(operator: OperatorProcess, text: str) -> int:
    """How many lines of the operator's log contain ``text`` (kopf logs each handler's outcome per object,
    prefixed ``[namespace/name]``)."""
    return sum(text in line for line in operator.log_path.read_text().splitlines())


def wait_for_resyncs(operator: OperatorProcess, namespace: str, name: str, count: int = 2) -> None:
    """Until the operator has resynced the run ``count`` more times: "the operator left it alone" is then
    observed over reconciles that happened, not assumed from a sleep."""
    done = f"[{namespace}/{name}] Resync succeeded"  # logged by the operator's resync loop
    before = logged_lines(operator, done)
    _wait(lambda: logged_lines(operator, done) >= before + count, f"{count} resyncs of {namespace}/{name}")


def wait_for_standby(standby: OperatorProcess) -> None:
    """Until the replica has read a higher-priority peer and paused (kopf's peering, logged at INFO)."""
    _wait(lambda: logged_lines(standby, "Pausing operations in favour of") > 0, "the standby to pause")


def new_namespace(api: k8s_client.ApiClient) -> str:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    k8s_client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def delete_namespace(api: k8s_client.ApiClient, name: str) -> None:
    try:
        k8s_client.CoreV1Api(api).delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise
