"""Two operator replicas under kopf peering: reconcile throughput, failover time and memory.

Used by ``bench/operator_latency.py --ha``. The replicas join one ClusterKopfPeering with distinct priorities
(equal ones would pause both); the higher one acts. Measured:

1. Throughput: N suspended local_colocated runs created as fast as one client can; runs/s until every
   one has all its children and a status for its generation, with the active replica's RSS after.
2. Failover: SIGKILL of the active replica (no clean exit, so its peering record must expire), then
   one spec change per run on M runs; the time from the kill until the standby has converged all of
   them. Target: under 30 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from _support.operator_process import OperatorProcess  # tests/ on sys.path: bench/operator_latency.py
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "specforge.io", "v1alpha1", "specforgeruns"
PEERING = "specforge-bench"
PEERING_CRDS = Path(__file__).resolve().parents[1] / "charts/specforge-operator/crds/kopf.dev-peerings.yaml"
CHILDREN_PER_LOCAL_RUN = 5


def install_peering(api: k8s_client.ApiClient) -> None:
    extensions = k8s_client.ApiextensionsV1Api(api)
    for body in yaml.safe_load_all(PEERING_CRDS.read_text()):
        try:
            extensions.create_custom_resource_definition(body)
        except ApiException as error:
            if error.status != 409:
                raise
    time.sleep(2)  # let the CRDs be established
    try:
        k8s_client.CustomObjectsApi(api).create_cluster_custom_object(
            "kopf.dev",
            "v1",
            "clusterkopfpeerings",
            {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": PEERING}},
        )
    except ApiException as error:
        if error.status != 409:
            raise


def start_replicas(kubeconfig: str, log_dir: Path) -> tuple[OperatorProcess, OperatorProcess]:
    """(active, standby): priorities 200 and 100 in the bench peering."""
    replicas = []
    for priority in (200, 100):
        process = OperatorProcess(
            kubeconfig,
            log_dir / f"operator-priority-{priority}.log",
            resync_seconds=600,
            scope_args=("--all-namespaces", f"--peering={PEERING}", f"--priority={priority}"),
        )
        process.wait_live()
        replicas.append(process)
    return replicas[0], replicas[1]


def count_converged(api: k8s_client.ApiClient, namespace: str, done: Callable[[dict[str, Any]], bool]) -> int:
    items = k8s_client.CustomObjectsApi(api).list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
        "items"
    ]
    return sum(1 for item in items if done(item))


def _reconciled(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    return (
        status.get("observedGeneration") == item["metadata"]["generation"]
        and len(status.get("children", [])) == CHILDREN_PER_LOCAL_RUN
    )


def wait_converged(api: k8s_client.ApiClient, namespace: str, count: int, timeout: float) -> float:
    started = time.monotonic()
    while (done := count_converged(api, namespace, _reconciled)) < count:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"only {done}/{count} runs converged after {timeout:.0f} s")
        time.sleep(0.25)
    return time.monotonic() - started


def delete_runs(api: k8s_client.ApiClient, namespace: str, timeout: float = 600) -> float:
    """Delete every run in ``namespace`` and wait until they are gone (an operator must be running to
    remove kopf's finalizer); the seconds it took."""
    custom = k8s_client.CustomObjectsApi(api)
    started = time.monotonic()
    custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    while left := len(custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]):
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{left} runs in {namespace} still there after {timeout:.0f} s")
        time.sleep(1)
    return time.monotonic() - started


def standby_resumed_at(log_path: Path, after: datetime) -> datetime | None:
    """When kopf in the standby logged its resume (local time, as its log lines are stamped)."""
    for line in log_path.read_text().splitlines():
        if "Resuming operations after the pause" in line:
            stamp = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
            if stamp >= after:
                return stamp
    return None


def bench_ha(
    api: k8s_client.ApiClient,
    kubeconfig: str,
    namespace: str,
    manifest: Callable[[str], dict[str, Any]],
    *,
    runs: int,
    changed_after_kill: int,
    log_dir: Path,
) -> None:
    install_peering(api)
    active, standby = start_replicas(kubeconfig, log_dir)
    custom = k8s_client.CustomObjectsApi(api)
    try:
        time.sleep(2)  # both replicas have seen each other's peering record
        started = time.monotonic()
        for index in range(runs):
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest(f"ha-{index}"))
        converged = (time.monotonic() - started) + wait_converged(api, namespace, runs, timeout=1800)
        rss, peak = active.rss_bytes()
        standby_reconciles = standby.metric("specforge_reconciles_total")
        print(
            f"2 replicas, {runs} runs: all converged after {converged:.1f} s = {runs / converged:.1f} runs/s"
        )
        print(
            f"  active replica RSS {rss / 2**20:.0f} MiB now, {peak / 2**20:.0f} MiB peak; standby reconciles: {standby_reconciles:.0f}"
        )

        active.kill()
        killed, killed_at = time.monotonic(), datetime.now()
        for index in range(changed_after_kill):
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, f"ha-{index}", {"spec": {"training": {"seed": 1}}}
            )
        wait_converged(api, namespace, runs, timeout=600)
        failover = time.monotonic() - killed
        print(
            f"SIGKILL of the active replica -> the standby converged {changed_after_kill} changed runs "
            f"after {failover:.1f} s   (target < 30 s)"
        )
        resumed = standby_resumed_at(standby.log_path, killed_at)
        if resumed is not None:
            print(
                f"  of which {(resumed - killed_at).total_seconds():.1f} s until the standby saw the peer's record"
                " expire and resumed (the rest is its take-over work)"
            )
        rss, peak = standby.rss_bytes()
        print(f"  standby (now active) RSS {rss / 2**20:.0f} MiB now, {peak / 2**20:.0f} MiB peak")
        delete_runs(api, namespace)
    finally:
        standby.stop()
        if active.process.poll() is None:
            active.stop()
