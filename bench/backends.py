"""Side by side on one cluster: PyTorchJob and JobSet, each applied directly and through our operator.

For each backend, N workloads of two trainer pods are created one after another, first as the backend's own
objects applied directly (the manifest our operator renders, without owner or ServiceAccount), then as N
dataflow_colocated SpecForgeRuns naming that backend (external store, so no Redis gates the trainers). Each
figure is the time from the create call returning to the last of the workload's pods being seen by a pod
watch: p50/p99 per case, and the latency our layer adds (operator minus direct). Then the resident memory of
training-operator, the JobSet controller and our operator, and the gang-restart time of each backend through
the operator: from the first failed rank (KWOK fails it on purpose) to every rank of the next attempt created.
Used by bench/operator_latency.py (``--backend-runs``); KWOK plays the kubelet.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as k8s_client
from kubernetes import watch as k8s_watch
from specforge_api.manifest import parse_run_manifest
from specforge_api.spec import TrainerBackend
from specforge_operator.kube import KubeApi
from specforge_operator.render.store import store_connection
from specforge_operator.workloads import workload_for
from urllib3.exceptions import ProtocolError

GROUP, VERSION, PLURAL = "specforge.io", "v1alpha1", "specforgeruns"
RUN_LABEL = "specforge.io/run"
PODS_PER_WORKLOAD = 2
KWOK_FAIL = {"specforge.io/kwok-fail": "true", "specforge.io/kwok-run-duration": "2s"}
LONG_RUN = {"specforge.io/kwok-run-duration": "600s"}


def run_manifest(name: str, backend: TrainerBackend, annotations: dict[str, str], backoff: int = 3) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SpecForgeRun",
        "metadata": {"name": name},
        "spec": {
            "deploymentMode": "dataflow_colocated",
            "targetModel": {"builtin": "tiny-llama"},
            "dataset": {"builtin": "chat-mini"},
            "metadataStore": {"external": {"url": "redis://redis.invalid:6379/0"}},
            "trainer": {
                "backend": backend.value,
                "replicas": PODS_PER_WORKLOAD,
                "resources": {"cpu": "10m", "memory": "64Mi"},
                "podAnnotations": annotations,
            },
            "runPolicy": {"backoffLimit": backoff},
        },
    }


def direct_workload(name: str, namespace: str, backend: TrainerBackend) -> dict[str, Any]:
    """The backend's own object as our operator renders it, standing alone (no owner, no ServiceAccount)."""
    manifest = {**run_manifest(name, backend, LONG_RUN), "metadata": {"name": name, "namespace": namespace}}
    manifest["metadata"]["uid"] = "direct"
    run = parse_run_manifest(manifest)
    workload = workload_for(run.spec.deployment_mode, backend).render(run, store_connection(run))
    del workload["metadata"]["ownerReferences"]
    for template in _pod_templates(workload):
        template["spec"].pop("serviceAccountName", None)
        template["spec"]["automountServiceAccountToken"] = False
    return workload


def _pod_templates(workload: dict[str, Any]) -> list[dict[str, Any]]:
    if workload["kind"] == "JobSet":
        return [rj["template"]["spec"]["template"] for rj in workload["spec"]["replicatedJobs"]]
    return [spec["template"] for spec in workload["spec"]["pytorchReplicaSpecs"].values()]


class PodWatcher(threading.Thread):
    """When each pod of the namespace was first seen, and when it first showed phase Failed, by run label."""

    def __init__(self, api: k8s_client.ApiClient, namespace: str) -> None:
        super().__init__(daemon=True)
        self.core = k8s_client.CoreV1Api(api)
        self.namespace = namespace
        self.watch = k8s_watch.Watch()
        self.lock = threading.Lock()
        self.created: dict[str, list[tuple[float, str]]] = {}  # run → [(time, owner uid)]
        self.first_failure: dict[str, float] = {}
        self._seen: set[str] = set()

    def run(self) -> None:
        try:
            for event in self.watch.stream(
                self.core.list_namespaced_pod, self.namespace, timeout_seconds=3600
            ):
                pod, now = (event or {}).get("object"), time.monotonic()
                run = (pod.metadata.labels or {}).get(RUN_LABEL) if pod is not None else None
                if run is None:  # not ours, or the stream ending as the benchmark stops the watch
                    continue
                with self.lock:
                    if pod.metadata.uid not in self._seen:
                        self._seen.add(pod.metadata.uid)
                        owner = (pod.metadata.owner_references or [None])[0]
                        self.created.setdefault(run, []).append((now, owner.uid if owner else ""))
                    if pod.status.phase == "Failed":
                        self.first_failure.setdefault(run, now)
        except ProtocolError:
            pass  # the connection closes when the benchmark stops the watch

    def all_created_at(self, run: str, count: int, after: float = 0.0) -> float | None:
        with self.lock:
            times = sorted(t for t, _ in self.created.get(run, []) if t >= after)
        return times[count - 1] if len(times) >= count else None


def wait(check: Callable[[], float | None], what: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while (value := check()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.005)
    return value


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _time_to_pods(
    api: k8s_client.ApiClient, namespace: str, names: list[str], create: Callable[[str], None]
) -> list[float]:
    watcher = PodWatcher(api, namespace)
    watcher.start()
    time.sleep(1.0)  # let the watch establish before the first create
    latencies = []
    for name in names:
        create(name)
        started = time.monotonic()
        done = wait(lambda n=name: watcher.all_created_at(n, PODS_PER_WORKLOAD), f"pods of {name}")
        latencies.append(done - started)
    watcher.watch.stop()
    return latencies


def _delete_all(api: k8s_client.ApiClient, namespace: str) -> None:
    custom, kube = k8s_client.CustomObjectsApi(api), KubeApi(api)
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"])
    for api_version, kind in (("kubeflow.org/v1", "PyTorchJob"), ("jobset.x-k8s.io/v1alpha2", "JobSet")):
        for item in kube.list(api_version, kind, namespace, RUN_LABEL):
            kube.delete(api_version, kind, namespace, item["metadata"]["name"], propagation="Foreground")
    core = k8s_client.CoreV1Api(api)
    wait(
        lambda: None if core.list_namespaced_pod(namespace, label_selector=RUN_LABEL).items else 0.0,
        "the benchmark's pods to be gone",
        timeout=300,
    )
    wait(
        lambda: (
            None if custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"] else 0.0
        ),
        "the benchmark's runs to be gone",
        timeout=300,
    )


def _gang_restart_seconds(api: k8s_client.ApiClient, namespace: str, backend: TrainerBackend) -> float:
    """First failed rank → every rank of the next attempt created, through the operator."""
    custom = k8s_client.CustomObjectsApi(api)
    watcher = PodWatcher(api, namespace)
    watcher.start()
    time.sleep(1.0)
    name = f"gang-{backend.value}"
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, run_manifest(name, backend, KWOK_FAIL, 1)
    )
    failed = wait(lambda: watcher.first_failure.get(name), f"a failed rank of {name}", timeout=120)

    def next_attempt_created() -> float | None:
        with watcher.lock:
            first_owner = watcher.created[name][0][1]
            later = sorted(t for t, owner in watcher.created[name] if owner != first_owner)
        return later[PODS_PER_WORKLOAD - 1] if len(later) >= PODS_PER_WORKLOAD else None

    restarted = wait(next_attempt_created, f"the second attempt of {name}", timeout=120)
    watcher.watch.stop()
    return restarted - failed


def controller_rss_mib(cluster_dir: Path) -> dict[str, float]:
    """Resident memory of the cluster's workload controllers (plain processes of hack/cluster.sh)."""
    found = {}
    for label, pid_file in (
        ("training-operator", cluster_dir / "training-operator" / "pid"),
        ("jobset-controller", cluster_dir / "jobset" / "pid"),
    ):
        try:
            pid = pid_file.read_text().strip()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        found[label] = kib / 1024
    return found


def bench_backends(
    api: k8s_client.ApiClient, namespace: str, runs: int, cluster_dir: Path, operator_rss: Callable[[], int]
) -> None:
    custom, kube = k8s_client.CustomObjectsApi(api), KubeApi(api)
    idle = controller_rss_mib(cluster_dir)
    print(
        f"side by side, {runs} workloads of {PODS_PER_WORKLOAD} pods per case, one at a time (apply -> all pods created):"
    )
    for backend in TrainerBackend:

        def apply_directly(name: str, backend: TrainerBackend = backend) -> None:
            kube.create(direct_workload(name, namespace, backend))

        def create_run(name: str, backend: TrainerBackend = backend) -> None:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, run_manifest(name, backend, LONG_RUN)
            )

        direct = _time_to_pods(
            api, namespace, [f"direct-{backend.value}-{i}" for i in range(runs)], apply_directly
        )
        _delete_all(api, namespace)
        ours = _time_to_pods(
            api,
            namespace,
            [f"run-{backend.value}-{i}" for i in range(runs)],
            lambda name, b=backend: (
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, run_manifest(name, b, LONG_RUN)
                )
                and None
            ),
        )
        _delete_all(api, namespace)
        print(
            f"  {backend.value:10s} direct p50 {statistics.median(direct) * 1000:5.0f} ms  p99 {percentile(direct, 0.99) * 1000:5.0f} ms"
            f" | via operator p50 {statistics.median(ours) * 1000:5.0f} ms  p99 {percentile(ours, 0.99) * 1000:5.0f} ms"
            f" | added p50 {(statistics.median(ours) - statistics.median(direct)) * 1000:+5.0f} ms"
            f"  p99 {(percentile(ours, 0.99) - percentile(direct, 0.99)) * 1000:+5.0f} ms"
        )
    for backend in TrainerBackend:
        seconds = _gang_restart_seconds(api, namespace, backend)
        print(
            f"  gang restart ({backend.value}, via operator): first failed rank -> next attempt's ranks created in {seconds:.1f} s"
        )
        _delete_all(api, namespace)
    busy = controller_rss_mib(cluster_dir)
    for name in sorted(set(idle) | set(busy)):
        print(f"  {name} RSS: {idle.get(name, 0):.0f} MiB idle before, {busy.get(name, 0):.0f} MiB after")
    print(f"  our operator RSS: {operator_rss() / 2**20:.0f} MiB after")
