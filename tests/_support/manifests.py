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


#: Spec changes the evaluation rules refuse, with the field each error must name; the API server (CEL)
#: and the pydantic models are held to the same list.
BAD_EVALUATION_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"dataset": {"builtin": "chat-mini", "heldOutConversations": 0}, "evaluation": {}}, "spec.evaluation"),
    ({"evaluation": {"prompts": 17}}, "spec.evaluation.prompts"),  # 16 held out by default
    ({"export": {"to": "sglang"}}, "spec.export"),
    ({"evaluation": {"intervalSteps": 75}}, "spec.evaluation.intervalSteps"),  # checkpoints every 50
    (
        {"training": {"checkpointInterval": 10}, "evaluation": {"intervalSteps": 25}},
        "spec.evaluation.intervalSteps",
    ),
    ({"evaluation": {"intervalSteps": 0}}, "spec.evaluation.intervalSteps"),
]

#: External-store specs refused because the URL would leak a password (issue: secrets stay in Secrets).
BAD_STORE_SPECS: list[tuple[dict[str, Any], str]] = [
    (
        {
            "deploymentMode": "dataflow_colocated",
            "metadataStore": {"external": {"url": f"redis://{userinfo}@redis.example:6379/0"}},
        },
        "spec.metadataStore.external.url",
    )
    for userinfo in (":hunter2", "default:hunter2", "user")
]

#: Sizes past the API's bounds, refused alike by the CRD schema and the models.
BAD_BOUND_SPECS: list[tuple[dict[str, Any], str]] = [
    ({"trainer": {"resources": {"cpu": "1" * 65}}}, "spec.trainer.resources.cpu"),
    ({"trainer": {"podAnnotations": {"example.com/big": "x" * 4097}}}, "spec.trainer.podAnnotations"),
    ({"trainer": {"podLabels": {"team": "x" * 64}}}, "spec.trainer.podLabels"),
    ({"training": {"maxSteps": 100_000_001}}, "spec.training.maxSteps"),
    ({"runPolicy": {"activeDeadlineSeconds": 315_360_001}}, "spec.runPolicy.activeDeadlineSeconds"),
    (
        {"trainer": {"tolerations": [{"operator": "Exists", "tolerationSeconds": 315_360_001}]}},
        "spec.trainer.tolerations",
    ),
]
