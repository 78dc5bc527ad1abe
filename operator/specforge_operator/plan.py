"""The plan: the children a run should have right now (spec → manifests), as a pure function.

The plan says what to apply (in order), what the run may own at all (so anything else it owns can be
pruned), and what waits for the metadata store: in durable modes with a managed Redis, the trainer workload
and the producers (``gated``) are applied only once the store is ready, so no GPU pod idles while Redis
starts. Whether it is ready is decided once per reconcile, by :meth:`ChildrenPlan.store_ready` from the
store's Deployment as the API server returned it. A finished run gets no workload re-applied, so a Job
removed by its TTL is not started again. The trainer workload's API is the run's backend
(:func:`specforge_operator.workloads.backend_of`): PyTorchJob or JobSet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from specforge_api.run import SpecForgeRun
from specforge_api.spec import TrainerBackend

from specforge_operator.render.config import progress_rbac, run_config_map
from specforge_operator.render.meta import ChildNames
from specforge_operator.render.producers import producer_job
from specforge_operator.render.storage import storage_claims
from specforge_operator.render.store import (
    MetadataStoreConnection,
    managed_redis_manifests,
    store_connection,
    store_is_ready,
)
from specforge_operator.workloads import TrainerWorkload, backend_of, workload_for

ChildKey = tuple[str, str, str]  # (apiVersion, kind, name)


def child_key(manifest: dict[str, Any]) -> ChildKey:
    return manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]


@dataclass(frozen=True)
class ChildrenPlan:
    # What runs the trainer ranks, decided once per reconcile from the mode and the backend.
    workload: TrainerWorkload
    trainer_key: ChildKey
    # The training-job API the workload uses (None for a single-pod Job), reported in status.trainerBackend.
    backend: TrainerBackend | None
    to_apply: list[dict[str, Any]]
    # Applied after to_apply once the managed store is ready (the trainer workload and producers); empty
    # when nothing waits (no managed store: they are in to_apply; a finished run: nothing is re-applied).
    gated: list[dict[str, Any]]
    # Everything this spec may own, applied now or later; owned objects outside it are pruned.
    allowed: set[ChildKey]
    store: MetadataStoreConnection | None
    # Name of the generated password Secret to create once (never re-applied), when the run needs one.
    auth_secret: str | None
    # The managed Redis Deployment whose readiness releases ``gated`` (None without a managed store).
    store_deployment: ChildKey | None

    @property
    def rendered(self) -> list[dict[str, Any]]:
        """Every child applied once the store is ready, in order."""
        return self.to_apply + self.gated

    def store_ready(self, applied: Mapping[ChildKey, dict[str, Any]]) -> bool:
        """The store is ready: there is no managed one, or its Deployment (as applied) has a ready replica."""
        return self.store_deployment is None or store_is_ready(applied.get(self.store_deployment))

    def status_fields(self) -> dict[str, Any]:
        return {"trainerBackend": self.backend.value} if self.backend is not None else {}


def plan_children(
    run: SpecForgeRun,
    *,
    finished: bool,
    producers_active: bool = False,
    default_backend: TrainerBackend = TrainerBackend.PYTORCHJOB,
) -> ChildrenPlan:
    """``default_backend``: for a run that names none and reported none yet (the cluster's, read at start-up).
    ``producers_active``: a producer pod still runs (a replacement finishing after the trainers did); the
    managed store keeps its replica until it is done, as the producer commits through it."""
    names = ChildNames(run.name)
    store = store_connection(run)
    base = [run_config_map(run), *progress_rbac(run), *storage_claims(run)]
    auth_secret = None
    store_deployment = None
    if store is not None and store.managed is not None:
        release_store = finished and not producers_active and not store.managed.keep_after_run
        base += managed_redis_manifests(run, store.managed, released=release_store)
        store_deployment = ("apps/v1", "Deployment", names.redis)
        if store.managed.auth.enabled:
            auth_secret = names.redis_auth
    backend = backend_of(run, default_backend)
    workload = workload_for(run.spec.deployment_mode, backend)
    trainer = workload.render(run, store)
    workloads = [trainer]
    if run.spec.producers is not None:
        workloads.append(producer_job(run, store))
    allowed = {child_key(manifest) for manifest in base + workloads}
    if auth_secret is not None:
        allowed.add(("v1", "Secret", auth_secret))
    if finished:
        to_apply, gated = base, []
    elif store_deployment is not None:
        to_apply, gated = base, workloads
    else:
        to_apply, gated = base + workloads, []
    return ChildrenPlan(
        workload=workload,
        trainer_key=child_key(trainer),
        backend=backend,
        to_apply=to_apply,
        gated=gated,
        allowed=allowed,
        store=store,
        auth_secret=auth_secret,
        store_deployment=store_deployment,
    )
