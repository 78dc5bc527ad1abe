"""A trainer backend the cluster does not serve: the run waits with a reason, and starts once it is served.

A run whose workload API (PyTorchJob or JobSet) has no CRD on the cluster would otherwise fail every apply
and retry forever with nothing in its status. Instead the workload is not applied, the run stays Pending with
``TrainerBackendAvailable=False`` naming what to install (or which backend to pick instead), one warning
event is posted per episode, and the next reconcile after the CRD appears creates the workload and sets the
condition True. Pure: the reconciler asks the API server's discovery whether the kind is served.
"""

from __future__ import annotations

from specforge_api.run import SpecForgeRun
from specforge_api.spec import TrainerBackend
from specforge_api.status import Phase

from specforge_operator.status.conditions import ConditionUpdate
from specforge_operator.status.derive import Event, Verdict

BACKEND_CONDITION = "TrainerBackendAvailable"
NOT_INSTALLED = "TrainerBackendNotInstalled"
SERVED = "TrainerBackendServed"

# What to install for each workload API, and the backend a user could switch to instead.
_INSTALL: dict[tuple[str, str], tuple[str, TrainerBackend]] = {
    ("kubeflow.org/v1", "PyTorchJob"): (
        "Kubeflow training-operator v1 (the PyTorchJob CRD)",
        TrainerBackend.JOBSET,
    ),
    ("jobset.x-k8s.io/v1alpha2", "JobSet"): ("JobSet (the jobset.x-k8s.io CRD)", TrainerBackend.PYTORCHJOB),
}


def not_served_message(api_version: str, kind: str) -> str:
    what, other = _INSTALL.get((api_version, kind), (f"the {kind} CRD", TrainerBackend.PYTORCHJOB))
    return (
        f"this cluster does not serve {kind} ({api_version}): install {what}, or set "
        f"spec.trainer.backend: {other.value} on a new run; the run starts once {kind} is served"
    )


def backend_availability(
    run: SpecForgeRun, unserved_workload: tuple[str, str] | None
) -> tuple[tuple[ConditionUpdate, ...], tuple[Event, ...], Verdict | None]:
    """The condition (only once it has been False), the warning (once per episode) and a Pending verdict.

    ``unserved_workload``: (apiVersion, kind) of the run's workload when the API server does not serve it.
    """
    previous = next(
        (c for c in (run.status.conditions if run.status else []) if c.type == BACKEND_CONDITION), None
    )
    if unserved_workload is None:  # reported only after it was False once, then kept True
        return ((ConditionUpdate(BACKEND_CONDITION, True, SERVED, ""),) if previous else ()), (), None
    message = not_served_message(*unserved_workload)
    condition = ConditionUpdate(BACKEND_CONDITION, False, NOT_INSTALLED, message)
    news = previous is None or previous.status != "False"
    events = (Event("Warning", NOT_INSTALLED, message),) if news else ()
    return (condition,), events, Verdict(Phase.PENDING, NOT_INSTALLED, message)
