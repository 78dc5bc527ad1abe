"""The plan: the children a run should have right now (spec → manifests), as a pure function.

The plan says what to apply (in order), what the run may own at all (so anything else it owns can be
pruned), and what it is waiting for: in durable modes with a managed Redis, the trainer workload and the
producers are held back until the store is ready, so no GPU pod idles while Redis starts. A finished run
gets no workload re-applied, so a Job removed by its TTL is not started again. The trainer workload's API
is the run's backend (:func:`specforge_operator.workloads.backend_of`): PyTorchJob or JobSet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from specforge_api.run import SpecForgeRun
from specforge_api.spec import TrainerBackend

from specforge_operator.render.config import progress_rbac, run_config_map
from specforge_operator.render.meta import ChildNames
from specforge_operator.render.producers import producer_job
from specforge_operator.render.storage import storage_claims
from specforge_operator.render.store import MetadataStoreConnection, managed_redis_manifests, store_connection
from specforge_operator.workloads import TrainerWorkload, backend_of, cluster_default_backend, workload_for

ChildKey = tuple[str, str, str]  # (apiVersion, kind, name)


def child_key(manifest: dict[str, Any]) -> ChildKey:
    return manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]


@dataclass(frozen=True)
class ChildrenPlan:
    # What runs the trainer ranks, decided once per reconcile from the mode and the backend.
    workload: TrainerWorkload
    trainer_key: ChildKey
    to_apply: list[dict[str, Any]]
    # Everything this spec may own, applied now or later; owned objects outside it are pruned.
    allowed: set[ChildKey]
    store: MetadataStoreConnection | None
    # Name of the generated password Secret to create once (never re-applied), when the run needs one.
    auth_secret: str | None = None
    waiting_for: str | None = None
    held_back: list[dict[str, Any]] = field(default_factory=list)
    # The training-job API the workload uses (None for a single-pod Job), reported in status.trainerBackend.
    backend: TrainerBackend | None = None

    def status_fields(self) -> dict[str, Any]:
        return {"trainerBackend": self.backend.value} if self.backend is not None else {}


def plan_children(
    run: SpecForgeRun, *, store_ready: bool, finished: bool, default_backend: TrainerBackend | None = None
) -> ChildrenPlan:
    """``default_backend``: for a run that names none and reported none yet (default: the cluster's)."""
    store = store_connection(run)
    base = [run_config_map(run), *progress_rbac(run), *storage_claims(run)]
    auth_secret = None
    if store is not None and store.managed is not None:
        base += managed_redis_manifests(run, store.managed, finished=finished)
        if store.managed.auth.enabled:
            auth_secret = ChildNames(run.name).redis_auth
    backend = backend_of(run, default_backend or cluster_default_backend())
    workload = workload_for(run.spec.deployment_mode, backend)
    trainer = workload.render(run, store)
    gated = [trainer]
    if run.spec.producers is not None:
        gated.append(producer_job(run, store))
    allowed = {child_key(manifest) for manifest in base + gated}
    if auth_secret is not None:
        allowed.add(("v1", "Secret", auth_secret))
    decided = (workload, child_key(trainer))
    if finished:
        return ChildrenPlan(*decided, base, allowed, store, auth_secret, backend=backend)
    if store is not None and store.managed is not None and not store_ready:
        return ChildrenPlan(
            *decided,
            base,
            allowed,
            store,
            auth_secret,
            waiting_for="metadata store",
            held_back=gated,
            backend=backend,
        )
    return ChildrenPlan(*decided, base + gated, allowed, store, auth_secret, backend=backend)
