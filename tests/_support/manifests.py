"""The smallest valid SpecForgeRun manifest, for tests to vary one field at a time."""

from __future__ import annotations

from typing import Any


def minimal_run(name: str = "bad", **spec: Any) -> dict[str, Any]:
    """A ``local_colocated`` run of the built-in target on the bundled data, plus ``spec`` overrides."""
    return {
        "apiVersion": "specforge.io/v1alpha1",
        "kind": "SpecForgeRun",
        "metadata": {"name": name},
        "spec": {
            "deploymentMode": "local_colocated",
            "targetModel": {"builtin": "tiny-llama"},
            "dataset": {"builtin": "chat-mini"},
            **spec,
        },
    }
