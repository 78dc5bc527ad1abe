"""Real pods on the local cluster's real node: cluster DNS, the API server from a pod, and storage.

``hack/cluster.sh up`` runs a kubelet on this machine beside the KWOK nodes (hack/lib/real-node.sh). These
tests run real containers from the base image there and check what the operator's pods rely on: Service
names resolve (``<svc>.<ns>.svc``, the fully qualified name, and short names in the pod's own namespace),
a pod reaches the API server through the ``kubernetes`` Service and authenticates with its projected
ServiceAccount token, and a claim on the default StorageClass binds and is writable by a non-root user.
They are skipped when the cluster has no real node (another cluster on this machine holds it,
``SPECFORGE_REAL_NODE=0``, or a cluster that is not ours) or the base image is not on the node yet.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.conftest import REAL_NODE_LABEL, REAL_NODE_NAME, fresh_namespace, wait_for
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

pytestmark = [pytest.mark.e2e, pytest.mark.realnode]

# hack/lib/node-env.sh's BASE_IMAGE: Debian with python3, imported into the node's containerd.
REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/specforge-k8s/debian-python:bookworm"
POD_TIMEOUT = 120.0

# Runs in a pod: the API server through the `kubernetes` Service, by name and by the IP in-cluster
# clients use, authenticated by the pod's projected token; prints who the API server says we are.
WHOAMI = """
import json, os, ssl, urllib.request
sa = "/var/run/secrets/kubernetes.io/serviceaccount"
token = open(f"{sa}/token").read()
context = ssl.create_default_context(cafile=f"{sa}/ca.crt")
body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}).encode()
host = os.environ["KUBERNETES_SERVICE_HOST"] + ":" + os.environ["KUBERNETES_SERVICE_PORT"]
for server in ("kubernetes.default.svc", host):
    request = urllib.request.Request(
        f"https://{server}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        print("user", server, json.load(response)["status"]["userInfo"]["username"])
"""


@pytest.fixture(scope="module", autouse=True)
def base_image_on_node(images_on_node: None) -> None:
    """The pods below run BASE_IMAGE, which `hack/images.sh` (through ``images_on_node``) imports."""


@pytest.fixture
def other_namespace(kube_api: k8s_client.ApiClient) -> Iterator[str]:
    with fresh_namespace(kube_api, "e2e-other") as name:
        yield name


def wait_default_service_account(core: k8s_client.CoreV1Api, namespace: str) -> None:
    """A new namespace's `default` ServiceAccount comes from the controller manager, a moment later."""

    def exists() -> bool:
        try:
            return bool(core.read_namespaced_service_account("default", namespace))
        except ApiException as error:
            if error.status == 404:
                return False
            raise

    wait_for(exists, f"the default ServiceAccount in {namespace}")


def real_pod(
    name: str,
    command: list[str],
    labels: dict[str, str] | None = None,
    restart: str = "Never",
    **spec: object,
) -> k8s_client.V1Pod:
    container = k8s_client.V1Container(
        name="main", image=BASE_IMAGE, image_pull_policy="Never", command=command
    )
    return k8s_client.V1Pod(
        metadata=k8s_client.V1ObjectMeta(name=name, labels=labels),
        spec=k8s_client.V1PodSpec(
            containers=[container],
            restart_policy=restart,
            node_selector={REAL_NODE_LABEL: "true"},
            termination_grace_period_seconds=1,
            **spec,
        ),
    )


def run_to_completion(core: k8s_client.CoreV1Api, namespace: str, pod: k8s_client.V1Pod) -> str:
    """Create ``pod``, wait until it finishes, and return its log; fail with the log when it failed."""
    name = pod.metadata.name
    core.create_namespaced_pod(namespace, pod)
    finished = wait_for(
        lambda: (
            (p := core.read_namespaced_pod(name, namespace)).status.phase in ("Succeeded", "Failed") and p
        ),
        f"pod {namespace}/{name} to finish",
        timeout=POD_TIMEOUT,
    )
    log = core.read_namespaced_pod_log(name, namespace)
    assert finished.spec.node_name == REAL_NODE_NAME
    assert finished.status.phase == "Succeeded", f"{name} failed:\n{log}\n{finished.status}"
    return log


def test_pod_resolves_and_authenticates_to_the_api_server(
    real_node: str, kube_api: k8s_client.ApiClient, namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    wait_default_service_account(core, namespace)
    script = (
        "set -e; getent hosts kubernetes.default.svc.cluster.local; getent hosts kubernetes.default.svc; "
        f"getent hosts kubernetes.default; exec python3 -c '{WHOAMI}'"
    )
    log = run_to_completion(core, namespace, real_pod("whoami", ["sh", "-c", script]))
    service_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert log.splitlines()[0].split()[0] == service_ip, log
    users = [line.split()[2] for line in log.splitlines() if line.startswith("user ")]
    assert users == [f"system:serviceaccount:{namespace}:default"] * 2, log


def test_claim_on_the_default_storage_class_binds_and_is_writable(
    real_node: str, kube_api: k8s_client.ApiClient, namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    wait_default_service_account(core, namespace)
    core.create_namespaced_persistent_volume_claim(
        namespace,
        k8s_client.V1PersistentVolumeClaim(
            metadata=k8s_client.V1ObjectMeta(name="data"),
            spec=k8s_client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteOnce"],
                resources=k8s_client.V1VolumeResourceRequirements(requests={"storage": "64Mi"}),
            ),
        ),
    )
    security = k8s_client.V1PodSecurityContext(run_as_user=10001, run_as_group=10001, fs_group=10001)
    volume = k8s_client.V1Volume(
        name="data", persistent_volume_claim=k8s_client.V1PersistentVolumeClaimVolumeSource(claim_name="data")
    )
    pod = real_pod(
        "writer",
        [
            "sh",
            "-c",
            "set -e; id -u; echo written > /data/probe; stat -c '%u %s' /data/probe; cat /data/probe",
        ],
        security_context=security,
        volumes=[volume],
    )
    pod.spec.containers[0].volume_mounts = [k8s_client.V1VolumeMount(name="data", mount_path="/data")]
    log = run_to_completion(core, namespace, pod)
    assert log.split() == ["10001", "10001", "8", "written"], log
    claim = core.read_namespaced_persistent_volume_claim("data", namespace)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "local-path"


def test_service_names_resolve_across_and_within_namespaces(
    real_node: str, kube_api: k8s_client.ApiClient, namespace: str, other_namespace: str
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    for ns in (namespace, other_namespace):
        wait_default_service_account(core, ns)
    labels = {"app": "echo"}
    server = real_pod(
        "echo-server",
        ["sh", "-c", "cd /tmp && echo hello > index.html && exec python3 -m http.server 8080"],
        labels=labels,
        restart="Always",
    )
    server.spec.containers[0].readiness_probe = k8s_client.V1Probe(
        tcp_socket=k8s_client.V1TCPSocketAction(port=8080), period_seconds=1
    )
    core.create_namespaced_pod(other_namespace, server)
    core.create_namespaced_service(
        other_namespace,
        k8s_client.V1Service(
            metadata=k8s_client.V1ObjectMeta(name="echo"),
            spec=k8s_client.V1ServiceSpec(
                selector=labels, ports=[k8s_client.V1ServicePort(port=80, target_port=8080)]
            ),
        ),
    )

    def server_ready() -> bool:
        conditions = core.read_namespaced_pod("echo-server", other_namespace).status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)

    # Ready, not merely Running: the Service has an endpoint only once the server listens.
    wait_for(server_ready, "the echo server to be ready", timeout=POD_TIMEOUT)
    # kube-proxy programs the Service a moment after its endpoint turns ready (until then the ClusterIP
    # refuses connections), so the client retries refused connections for a while, as clients do.
    fetch = (
        "import sys, time, urllib.request\n"
        "for attempt in range(60):\n"
        "    try:\n"
        "        print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()); break\n"
        "    except OSError:\n"
        "        if attempt == 59: raise\n"
        "        time.sleep(0.5)\n"
    )
    # From another namespace: <svc>.<ns>.svc, the fully qualified name, and a request through the Service.
    script = (
        f"set -e; getent hosts echo.{other_namespace}.svc; getent hosts echo.{other_namespace}.svc.cluster.local; "
        f"python3 -c '{fetch}' http://echo.{other_namespace}.svc/"
    )
    log = run_to_completion(core, namespace, real_pod("client", ["sh", "-c", script]))
    service_ip = core.read_namespaced_service("echo", other_namespace).spec.cluster_ip
    lines = log.splitlines()
    assert [line.split()[0] for line in lines[:2]] == [service_ip] * 2, log
    assert lines[2] == "hello", log
    # From its own namespace: the short name, as training-operator's `<job>-master-0` Service is used.
    log = run_to_completion(core, other_namespace, real_pod("neighbour", ["getent", "hosts", "echo"]))
    assert log.split()[0] == service_ip, log


def test_node_keeps_no_image_that_an_import_replaced(local_control_plane: bool) -> None:
    """Each build of the trainer image is a new 6 GB image; the one it replaced must not stay in the node's
    store under the kubelet's by-ID name, or every commit's `make test` leaves 6 GB behind."""
    if not local_control_plane:
        pytest.skip("the node's containerd is hack/cluster.sh's only on the local cluster")
    listing = subprocess.run(
        ["bash", "-c", 'source hack/lib/node-env.sh && ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls'],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()[1:]
    by_name = {line.split()[0]: line.split()[2] for line in listing}
    named = {digest for name, digest in by_name.items() if not name.startswith("sha256:")}
    orphans = sorted(
        name for name, digest in by_name.items() if name.startswith("sha256:") and digest not in named
    )
    assert not orphans, f"the node's containerd keeps images no name points to any more: {orphans}"
