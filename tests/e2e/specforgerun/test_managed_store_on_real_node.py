"""The managed Redis, really running on the real node, with the store's own overrides: its placement,
env from a Secret and a ConfigMap, a Secret mounted as files and extra pod labels; its password read
from a config file (not in argv, where ``ps`` shows it) and enforced; a NetworkPolicy admitting only
the run's pods; and, once the run has finished, no Redis running while its claim stays.

The trainer pods are faked by KWOK (only the store matters here, and its image is small); the operator
is the host process of the session (tests/e2e/specforgerun/conftest.py). Enforcement of the
NetworkPolicy needs a CNI that implements it, which the local cluster's bridge plugin does not: the
policy object is checked, not a refused connection.
"""

from __future__ import annotations

import base64
import subprocess
from typing import Any

import pytest
from _support.manifests import minimal_run
from _support.operator_process import OperatorProcess
from e2e.conftest import KWOK_RUN_DURATION_ANNOTATION, REAL_NODE_LABEL, wait_for
from e2e.specforgerun.conftest import Runs
from kubernetes import client as k8s_client
from specforge_operator.kube import KubeApi

pytestmark = [pytest.mark.slow, pytest.mark.realnode]

RUN = "store-real"
STORE_SELECTOR = f"specforge.io/run={RUN},app.kubernetes.io/component=metadata-store"


def _store_overrides() -> dict[str, Any]:
    return {
        "nodeSelector": {REAL_NODE_LABEL: "true"},
        "env": [
            {"name": "EXTRA_TOKEN", "valueFrom": {"secretKeyRef": {"name": "store-extra", "key": "token"}}}
        ],
        "envFrom": [{"configMapRef": {"name": "store-settings"}, "prefix": "CFG_"}],
        "volumes": [{"name": "extra", "secret": {"secretName": "store-extra"}}],
        "volumeMounts": [{"name": "extra", "mountPath": "/etc/extra", "readOnly": True}],
        "podLabels": {"team": "search"},
        "persistence": {"enabled": True, "size": "64Mi"},
        "resources": {"cpu": "100m", "memory": "128Mi"},
    }


def _exec(namespace: str, pod: str, *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "exec", "-n", namespace, pod, "--", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_managed_store_runs_on_the_real_node_with_its_overrides_and_stops_after_the_run(
    kube_api: k8s_client.ApiClient,
    kube: KubeApi,
    runs: Runs,
    operator_process: OperatorProcess,
    real_node: str,
) -> None:
    core = k8s_client.CoreV1Api(kube_api)
    namespace = runs.namespace
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "store-extra"}, "stringData": {"token": "hf_secret_value"}}
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "store-settings"}, "data": {"MODE": "strict"}}
    )
    runs.create(
        minimal_run(
            RUN,
            deploymentMode="dataflow_colocated",
            metadataStore={"managed": _store_overrides()},
            # The KWOK trainer keeps running long enough to look at the store, then succeeds.
            trainer={"podAnnotations": {KWOK_RUN_DURATION_ANNOTATION: "45s"}},
        )
    )

    def running_store_pod() -> dict[str, Any] | None:
        pods = kube.list("v1", "Pod", namespace, STORE_SELECTOR)
        ready = [
            p
            for p in pods
            if any(c.get("ready") for c in (p.get("status") or {}).get("containerStatuses") or [])
        ]
        return ready[0] if ready else None

    pod = wait_for(running_store_pod, "the managed Redis pod to be ready on the real node", timeout=180)
    name = pod["metadata"]["name"]
    assert pod["spec"]["nodeName"] == real_node
    assert pod["metadata"]["labels"]["team"] == "search"

    seen = _exec(namespace, name, "sh", "-c", 'echo "$EXTRA_TOKEN $CFG_MODE"; cat /etc/extra/token')
    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.split() == ["hf_secret_value", "strict", "hf_secret_value"]

    secret = core.read_namespaced_secret(f"{RUN}-redis-auth", namespace)
    password = base64.b64decode(secret.data["password"]).decode()
    argv = _exec(namespace, name, "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline")
    assert argv.returncode == 0 and "redis-server" in argv.stdout, argv
    assert password not in argv.stdout, "the password shows in redis-server's argv"
    refused = _exec(namespace, name, "redis-cli", "ping")
    assert "NOAUTH" in refused.stdout + refused.stderr, refused
    answered = subprocess.run(
        [
            "kubectl",
            "exec",
            "-i",
            "-n",
            namespace,
            name,
            "--",
            "sh",
            "-c",
            'REDISCLI_AUTH="$(cat)" redis-cli ping',
        ],
        input=password,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answered.stdout.strip() == "PONG", answered

    policy = kube.get("networking.k8s.io/v1", "NetworkPolicy", namespace, f"{RUN}-redis")
    assert policy is not None, "no NetworkPolicy in front of the managed Redis"
    assert policy["spec"]["ingress"][0]["from"] == [
        {"podSelector": {"matchLabels": {"specforge.io/run": RUN}}}
    ]

    runs.wait_phase(RUN, "Succeeded", timeout=180)

    def store_stopped() -> bool:
        deployment = kube.get("apps/v1", "Deployment", namespace, f"{RUN}-redis") or {}
        return deployment.get("spec", {}).get("replicas") == 0 and not kube.list(
            "v1", "Pod", namespace, STORE_SELECTOR
        )

    wait_for(store_stopped, "the managed Redis to be scaled to zero after the run finished", timeout=60)
    claim = core.read_namespaced_persistent_volume_claim(f"{RUN}-redis-data", namespace)
    assert claim.status.phase == "Bound", "the store's data claim must stay while the run exists"
