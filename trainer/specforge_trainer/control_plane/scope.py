"""The run id every store key, sample ref and checkpoint of a run is scoped by."""

from __future__ import annotations

from specforge_api import SpecForgeRun
from specforge_api.pod_contract import PodEnv


def run_scope(run: SpecForgeRun) -> str:
    """``<namespace>/<name>/<uid>`` in a cluster's pods, so two runs named alike in two namespaces, or a
    run deleted and applied again under its name, never meet in one Redis; the run's name elsewhere
    (a laptop's processes have no API server to hand out a uid)."""
    uid = PodEnv.from_environ().run_uid
    return f"{run.namespace}/{run.name}/{uid}" if uid else run.name
