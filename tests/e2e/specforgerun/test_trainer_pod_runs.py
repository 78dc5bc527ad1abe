"""The rendered trainer pod really runs: take the command and env from the pod the operator created, run
them as a local process (the image cannot run here; volume mount paths map to local directories, and the
pod's ServiceAccount token is used through a kubeconfig), and see it train and report progress into the
run's status through the narrowly scoped RBAC the operator rendered.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.manifests import minimal_run
from _support.operator_process import OperatorProcess
from e2e.conftest import LONG_RUN, wait_for
from e2e.specforgerun.conftest import Runs
from kubernetes import client as k8s_client
from specforge_operator.kube import KubeApi

pytestmark = pytest.mark.slow


def _pod_of(kube: KubeApi, namespace: str, run_name: str) -> dict[str, Any]:
    selector = f"specforge.io/run={run_name},app.kubernetes.io/component=trainer"
    return wait_for(lambda: next(iter(kube.list("v1", "Pod", namespace, selector)), None), "the trainer pod")


def _service_account_kubeconfig(
    kube_api: k8s_client.ApiClient, namespace: str, account: str, path: Path
) -> None:
    """A kubeconfig that authenticates as the pod's ServiceAccount (what in-cluster config would give it)."""
    token = (
        k8s_client.CoreV1Api(kube_api)
        .create_namespaced_service_account_token(account, namespace, {"spec": {"expirationSeconds": 3600}})
        .status.token
    )
    configuration = kube_api.configuration
    cluster: dict[str, Any] = {"server": configuration.host}
    if configuration.ssl_ca_cert:
        cluster["certificate-authority-data"] = base64.b64encode(
            Path(configuration.ssl_ca_cert).read_bytes()
        ).decode()
    else:
        cluster["insecure-skip-tls-verify"] = True
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "test", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {"name": "pod", "context": {"cluster": "test", "user": account, "namespace": namespace}}
                ],
                "current-context": "pod",
            }
        )
    )


def _local_process_spec(
    kube: KubeApi, pod: dict[str, Any], workdir: Path
) -> tuple[list[str], dict[str, str]]:
    """The pod's command and env, with every volume mount path mapped to a directory under ``workdir``."""
    namespace = pod["metadata"]["namespace"]
    (container,) = pod["spec"]["containers"]
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    mapping: dict[str, str] = {}
    config_files: list[Path] = []
    for mount in container["volumeMounts"]:
        local_dir = workdir / mount["name"]
        local_dir.mkdir(parents=True, exist_ok=True)
        mapping[mount["mountPath"]] = str(local_dir)
        config_map = volumes[mount["name"]].get("configMap")
        if config_map:
            data = kube.get("v1", "ConfigMap", namespace, config_map["name"])["data"]
            for key, content in data.items():
                (local_dir / key).write_text(content)
                config_files.append(local_dir / key)

    def local(value: str) -> str:
        for mount_path, local_dir in sorted(mapping.items(), key=lambda item: -len(item[0])):
            if value == mount_path or value.startswith(mount_path + "/"):
                return local_dir + value[len(mount_path) :]
        return value

    # The manifest inside the ConfigMap names mount paths too (feature store, checkpoints): map them.
    for config_file in config_files:
        document = yaml.safe_load(config_file.read_text())
        for section in ("featureStore", "checkpoints"):
            document["spec"][section]["path"] = local(document["spec"][section]["path"])
        config_file.write_text(yaml.safe_dump(document))

    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = local(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            secret = kube.get("v1", "Secret", namespace, ref["name"])
            env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return [local(part) for part in container["command"] + container.get("args", [])], env


def test_rendered_trainer_pod_trains_and_reports_progress(
    kube_api: k8s_client.ApiClient,
    kube: KubeApi,
    runs: Runs,
    operator_process: OperatorProcess,
    tmp_path: Path,
) -> None:
    if shutil.which("specforge") is None and not (Path(sys.executable).parent / "specforge").exists():
        pytest.fail("the `specforge` CLI is not installed (pip install -e .[trainer])")
    manifest = minimal_run(
        "real",
        training={"epochs": 1, "maxSteps": 6, "batchSize": 2, "maxLength": 64, "checkpointInterval": 3},
        trainer={"podAnnotations": LONG_RUN},
    )
    runs.create(manifest)
    pod = _pod_of(kube, runs.namespace, "real")
    command, env = _local_process_spec(kube, pod, tmp_path / "pod")
    assert command[:2] == ["specforge", "train"]
    assert env["SPECFORGE_RUN_NAME"] == "real" and env["SPECFORGE_DEPLOYMENT_MODE"] == "local_colocated"
    kubeconfig = tmp_path / "pod-kubeconfig"
    _service_account_kubeconfig(kube_api, runs.namespace, pod["spec"]["serviceAccountName"], kubeconfig)

    command[0] = str(Path(sys.executable).parent / "specforge")
    process_env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    result = subprocess.run(
        command,
        env={**process_env, **env, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"

    def final_progress() -> dict | None:
        progress = (runs.get("real").get("status") or {}).get("progress") or {}
        return progress if progress.get("step") == 6 else None

    # The last report (on_end) is the final step, and no operator status write may roll it back.
    progress = wait_for(final_progress, "the final step's progress in the run status")
    assert progress["totalSteps"] == 6 and isinstance(progress["loss"], float), progress
    assert progress["updatedAt"]
    checkpoints = Path(command[command.index("--out") + 1])
    assert any(checkpoints.iterdir()), "no checkpoint written"
