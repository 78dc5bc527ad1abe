"""Test-object builders: minimal valid run manifests per mode, with targeted overrides."""

from __future__ import annotations

import copy
from typing import Any

from specforge_api import SpecForgeRun, parse_run_manifest


def run_manifest(mode: str = "local_colocated", name: str = "demo", **spec: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "apiVersion": "specforge.io/v1alpha1",
        "kind": "SpecForgeRun",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "deploymentMode": mode,
            "targetModel": {"builtin": "tiny-llama"},
            "dataset": {"builtin": "chat-mini"},
        },
    }
    if mode == "disaggregated":
        manifest["spec"]["producers"] = {"replicas": 2, "gpusPerReplica": 1}
        manifest["spec"]["featureStore"] = {"volume": {"hostPath": {"path": "/var/lib/specforge/features"}}}
    manifest["spec"].update(copy.deepcopy(spec))
    return manifest


def build_run(
    mode: str = "local_colocated", name: str = "demo", uid: str = "uid-1", **spec: Any
) -> SpecForgeRun:
    manifest = run_manifest(mode, name, **spec)
    manifest["metadata"].update(uid=uid, generation=1)
    return parse_run_manifest(manifest)
