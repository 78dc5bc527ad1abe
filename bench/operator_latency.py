"""Operator benchmark on the local control plane (or $KUBECONFIG): latency and scale, with its memory.

1. Apply → all children created: for each of N local_colocated runs (suspended: the children are the
   same, KWOK just has no pods to fake), created one after another, the time from the create call
   returning to the last child (the trainer Job) being seen by a watch; every run's full child set is
   then checked. p50 and p99. Target: p50 <= 1 s.
2. Reconcile M runs: M suspended runs created as fast as one client can; the time until every run has
   all its children and a status written for its generation (suspended, so KWOK has no pods to fake and
   the figure is the operator's, not the scheduler's).
3. The operator's RSS (current and peak) after both, and again 10 s later. Target: <= 200 MB.
4. Two replicas with kopf peering (bench/operator_ha.py): throughput of ``--ha-runs`` runs with the
   active replica's RSS, then the time for the standby to converge ``--ha-changed`` changed runs after
   SIGKILL of the active one. Target: under 30 s.
5. PyTorchJob and JobSet side by side (bench/backends.py, ``--backend-runs``): apply -> all pods created,
   directly and through the operator, each controller's RSS, and each backend's gang-restart time.

The operator runs as a real subprocess (``python -m specforge_operator``), as in the e2e tests.
Usage: python bench/operator_latency.py [--latency-runs 100] [--scale-runs 1000] [--ha-runs 1000]; a count of 0
skips its part. Each part's runs are deleted before the next part starts, so the replicas of part 4 see
exactly their own runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from specforge_operator.kube import KubeApi
from urllib3.exceptions import ProtocolError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # before operator_ha: it needs it too
from _support.manifests import minimal_run
from _support.operator_process import OperatorProcess
from backends import bench_backends
from operator_ha import bench_ha, delete_runs

REPO_ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "specforge.io", "v1alpha1", "specforgeruns"
CHILDREN_PER_LOCAL_RUN = 5  # ConfigMap, ServiceAccount, Role, RoleBinding, Job
SETTLE_SECONDS = 10.0  # longer than the operator's heap-trim interval (5 s)


def run_manifest(name: str, *, suspend: bool) -> dict[str, Any]:
    return minimal_run(name, trainer={"resources": {"cpu": "10m", "memory": "64Mi"}}, suspend=suspend)


class JobWatcher(threading.Thread):
    """Records when each trainer Job in a namespace is first seen."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str) -> None:
        super().__init__(daemon=True)
        self.batch = k8s_client.BatchV1Api(api)
        self.namespace = namespace
        self.first_seen: dict[str, float] = {}
        self.watch = k8s_watch.Watch()
        self.started = threading.Event()

    def run(self) -> None:
        self.started.set()
        try:
            for event in self.watch.stream(
                self.batch.list_namespaced_job, self.namespace, timeout_seconds=3600
            ):
                self.first_seen.setdefault(event["object"].metadata.name, time.monotonic())
        except ProtocolError:
            pass  # the connection closes when the benchmark stops the watch


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def bench_latency(api: k8s_client.ApiClient, namespace: str, count: int) -> list[float]:
    custom, kube = k8s_client.CustomObjectsApi(api), KubeApi(api)
    watcher = JobWatcher(api, namespace)
    watcher.start()
    watcher.started.wait()
    time.sleep(1.0)  # let the watch establish before the first create
    latencies = []
    for index in range(count):
        name = f"lat-{index}"
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, run_manifest(name, suspend=True)
        )
        created = time.monotonic()
        job = f"{name}-trainer"
        deadline = created + 30
        while job not in watcher.first_seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{job} not created within 30 s")
            time.sleep(0.002)
        latencies.append(watcher.first_seen[job] - created)
    watcher.watch.stop()
    for index in range(count):
        children = sum(
            len(kube.list(api_version, kind, namespace, f"specforge.io/run=lat-{index}"))
            for api_version, kind in (
                ("v1", "ConfigMap"),
                ("v1", "ServiceAccount"),
                ("rbac.authorization.k8s.io/v1", "Role"),
                ("rbac.authorization.k8s.io/v1", "RoleBinding"),
                ("batch/v1", "Job"),
            )
        )
        if children != CHILDREN_PER_LOCAL_RUN:
            raise AssertionError(
                f"run lat-{index} has {children} children, expected {CHILDREN_PER_LOCAL_RUN}"
            )
    return latencies


def bench_scale(api: k8s_client.ApiClient, namespace: str, count: int) -> tuple[float, float]:
    custom = k8s_client.CustomObjectsApi(api)
    started = time.monotonic()
    for index in range(count):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, run_manifest(f"scale-{index}", suspend=True)
        )
    created = time.monotonic() - started
    while True:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        done = sum(
            1
            for item in items
            if item["metadata"]["name"].startswith("scale-")
            and (item.get("status") or {}).get("observedGeneration") == item["metadata"]["generation"]
            and len(item["status"].get("children", [])) == CHILDREN_PER_LOCAL_RUN
        )
        if done == count:
            return created, time.monotonic() - started
        if time.monotonic() - started > 1800:
            raise TimeoutError(f"only {done}/{count} runs reconciled after 30 min")
        time.sleep(0.5)


def cluster_kubeconfig() -> tuple[str, dict[str, str] | None]:
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"], None
    env = {**os.environ, "SPECFORGE_CLUSTER_NAME": f"bench-operator-{os.getpid()}"}
    out = subprocess.run(
        [str(REPO_ROOT / "hack/cluster.sh"), "up"], env=env, check=True, capture_output=True, text=True
    )
    line = next(line for line in reversed(out.stdout.splitlines()) if line.startswith("export KUBECONFIG="))
    return line.removeprefix("export KUBECONFIG="), env


@contextlib.contextmanager
def bench_namespace(core: k8s_client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace, deleted after use (its runs must be gone by then: they carry kopf's finalizer)."""
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        yield namespace
    finally:
        core.delete_namespace(namespace)


def bench_single_replica(
    api: k8s_client.ApiClient, kubeconfig: str, log_dir: Path, latency_runs: int, scale_runs: int
) -> None:
    """Parts 1-3 with one replica; its runs are deleted before it stops, so later parts see none of them."""
    operator = OperatorProcess(kubeconfig, log_dir / "operator.log", resync_seconds=600)
    with bench_namespace(k8s_client.CoreV1Api(api)) as namespace:
        try:
            operator.wait_live()
            if latency_runs:
                latencies = bench_latency(api, namespace, latency_runs)
                print(
                    f"apply -> all {CHILDREN_PER_LOCAL_RUN} children created, {len(latencies)} runs, one at a time:"
                )
                print(
                    f"  p50 {statistics.median(latencies) * 1000:.0f} ms   p99 {percentile(latencies, 0.99) * 1000:.0f} ms"
                    f"   max {max(latencies) * 1000:.0f} ms   (target p50 <= 1000 ms)"
                )
            if scale_runs:
                created, reconciled = bench_scale(api, namespace, scale_runs)
                print(
                    f"{scale_runs} runs: created in {created:.1f} s; all reconciled (children + status) after {reconciled:.1f} s"
                )
                print(f"  {scale_runs / reconciled:.1f} runs/s end to end")
            rss, peak = operator.rss_bytes()
            print(
                f"operator RSS: {rss / 2**20:.0f} MiB now, {peak / 2**20:.0f} MiB peak   (target <= 200 MB)"
            )
            time.sleep(SETTLE_SECONDS)
            print(
                f"  {operator.rss_bytes()[0] / 2**20:.0f} MiB {SETTLE_SECONDS:.0f} s later (idle, heap trimmed)"
            )
            # The replica removes kopf's finalizer from the runs it is deleting, so it stops only after.
            deleted = delete_runs(api, namespace)
            print(f"  (its runs deleted in {deleted:.1f} s before it stopped)")
        finally:
            operator.stop()


def bench_backends_with_operator(
    api: k8s_client.ApiClient, kubeconfig: str, log_dir: Path, runs: int
) -> None:
    """Part 5 (bench/backends.py): PyTorchJob and JobSet side by side, directly and through one replica."""
    operator = OperatorProcess(kubeconfig, log_dir / "operator-backends.log", resync_seconds=600)
    with bench_namespace(k8s_client.CoreV1Api(api)) as namespace:
        try:
            operator.wait_live()
            bench_backends(api, namespace, runs, Path(kubeconfig).parent, lambda: operator.rss_bytes()[0])
        finally:
            operator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-runs", type=int, default=100, help="0 skips the latency part")
    parser.add_argument("--scale-runs", type=int, default=1000, help="0 skips the scale part")
    parser.add_argument("--ha-runs", type=int, default=1000, help="runs for the 2-replica part (0 skips it)")
    parser.add_argument(
        "--ha-changed", type=int, default=50, help="runs changed right after the failover kill"
    )
    parser.add_argument(
        "--backend-runs",
        type=int,
        default=20,
        help="workloads per case of the PyTorchJob/JobSet side-by-side part, bench/backends.py (0 skips it)",
    )
    args = parser.parse_args()

    kubeconfig, cluster_env = cluster_kubeconfig()
    api = k8s_config.new_client_from_config(config_file=kubeconfig)
    subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            str(REPO_ROOT / "crds"),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            kubeconfig,
            "wait",
            "--for=condition=Established",
            "crd/specforgeruns.specforge.io",
        ],
        check=True,
        capture_output=True,
    )
    core = k8s_client.CoreV1Api(api)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    try:
        if args.latency_runs or args.scale_runs:
            bench_single_replica(api, kubeconfig, log_dir, args.latency_runs, args.scale_runs)
        if args.backend_runs:
            bench_backends_with_operator(api, kubeconfig, log_dir, args.backend_runs)
        if args.ha_runs:
            with bench_namespace(core) as ha_namespace:
                bench_ha(
                    api,
                    kubeconfig,
                    ha_namespace,
                    lambda name: run_manifest(name, suspend=True),
                    runs=args.ha_runs,
                    changed_after_kill=args.ha_changed,
                    log_dir=log_dir,
                )
    finally:
        if cluster_env is not None:
            subprocess.run([str(REPO_ROOT / "hack/cluster.sh"), "down"], env=cluster_env, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
