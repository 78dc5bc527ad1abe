"""Names, labels and owner references shared by every child of a run.

Child names are the run name plus a fixed suffix, so a reconcile can find its children again without a
lookup table; labels follow the ``app.kubernetes.io/*`` recommendations plus ``specforge.io/run`` for
selection.
"""

from __future__ import annotations

from typing import Any

from specforge_api.pod_contract import COMPONENT_LABEL, RUN_LABEL
from specforge_api.run import API_VERSION, KIND, SpecForgeRun

FIELD_MANAGER = "specforge-operator"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PART_OF = "specforge-k8s"


TRAINER_COMPONENT = "trainer"  # the app.kubernetes.io/component of the trainer pods and their config


class ChildNames:
    """The name of each child of one run."""

    def __init__(self, run_name: str) -> None:
        self.config = f"{run_name}-config"
        self.trainer = f"{run_name}-trainer"
        self.producers = f"{run_name}-producers"
        self.progress_role = f"{run_name}-progress"
        self.redis = f"{run_name}-redis"
        self.redis_auth = f"{run_name}-redis-auth"
        self.redis_data = f"{run_name}-redis-data"
        self.features = f"{run_name}-features"
        self.checkpoints = f"{run_name}-checkpoints"


def labels(run: SpecForgeRun, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "specforge",
        "app.kubernetes.io/instance": run.name,
        COMPONENT_LABEL: component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        RUN_LABEL: run.name,
    }


def selector_labels(run: SpecForgeRun, component: str) -> dict[str, str]:
    """The immutable subset used in selectors (Deployment, Service)."""
    return {RUN_LABEL: run.name, COMPONENT_LABEL: component}


def owner_reference(run: SpecForgeRun) -> dict[str, Any]:
    if not run.metadata.uid:
        raise ValueError(
            f"run {run.namespace}/{run.name} has no uid; children need one for their owner reference"
        )
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": run.name,
        "uid": run.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(run: SpecForgeRun, name: str, component: str, **extra_labels: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": run.namespace,
        "labels": {**labels(run, component), **extra_labels},
        "ownerReferences": [owner_reference(run)],
    }
