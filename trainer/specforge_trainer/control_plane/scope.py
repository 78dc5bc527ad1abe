"""The run id every store key, sample ref and checkpoint of a run is scoped by."""

from __future__ import annotations

import os

from specforge_api import SpecForgeRun
from specforge_api.pod_contract import Env


def run_scope(run: SpecForgeRun) -> str:
    """``<namespace>/<name>/<uid>`` in a cluster's pods, so two runs named alike in two namespaces, or a
    run deleted and applied again under its name, never meet in one Redis; the run's name elsewhere
    (a laptop's processes have no API server to hand out a uid)."""
    uid = os.environ.get(Env.RUN_UID)
    return f"{run.namespace}/{run.name}/{uid}" if uid else run.name
