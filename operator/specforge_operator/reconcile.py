"""The level-based reconcile of one run: desired children vs. what exists, then status from what exists.

Called the same way on create, resume, update, from the resync loop and when a child changes, so a missed or
repeated trigger is harmless. Steps: apply the children the plan allows now (server-side apply, one field
manager: unchanged objects are not rewritten), create the store password once, release the held-back
workload when the store is ready, prune owned objects the spec no longer wants (only after a spec change),
observe the workload, derive the status and write it when it changed. Events are returned, not posted:
the caller posts them after the status write.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from specforge_api.manifest import parse_run_manifest
from specforge_api.pod_contract import COMPONENT_LABEL, RUN_LABEL
from specforge_api.run import API_VERSION, KIND, SpecForgeRun
from specforge_api.spec import TrainerBackend
from specforge_api.status import Phase, SpecForgeRunStatus

from specforge_operator.kube import RESOURCE_PLURALS, KubeApi, api_error_message
from specforge_operator.metrics import RunCensus, record_child_created
from specforge_operator.plan import ChildKey, ChildrenPlan, child_key, plan_children
from specforge_operator.policies.evaluate import PolicyInputs, PolicyOutcome, evaluate_policies
from specforge_operator.policies.pod_health import pod_health
from specforge_operator.policies.queueing import (
    KUEUE_API_VERSION,
    KUEUE_QUEUE_KIND,
    SuspendOwnership,
    is_queue_managed,
    suspend_ownership,
    suspend_path,
    with_suspend,
    workload_suspended,
)
from specforge_operator.policies.schedulability import (
    SCHEDULABLE_CONDITION,
    Schedulability,
    pod_schedulability,
    waits_for_claims,
    with_unbound_claims,
)
from specforge_operator.render.meta import TRAINER_COMPONENT, ChildNames
from specforge_operator.render.producers import PRODUCER_COMPONENT
from specforge_operator.render.store import PASSWORD_KEY, REDIS_CONFIG_KEY, redis_auth_secret
from specforge_operator.status import Event, Observed, derive_status
from specforge_operator.status.derive import operator_fields, trainer_fields
from specforge_operator.status.ledger import LEDGER_ANNOTATION, ledger_entry, trusted_status
from specforge_operator.workloads.base import WorkloadObservation, WorkloadState
from specforge_operator.workloads.batch_job import observe_job

# Kinds a run may own that the prune step lists (Pods belong to workloads, not to the run). Secrets are
# not listed: the operator may not list Secrets (RBAC), so its one Secret is pruned by name.
PRUNABLE_KINDS = [key for key in RESOURCE_PLURALS if key[1] not in ("Pod", "SpecForgeRun", "Secret")]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ReconcileResult:
    run: SpecForgeRun
    status: dict[str, Any]
    events: list[Event]
    status_written: bool


class Reconciler:
    def __init__(
        self,
        kube: KubeApi,
        *,
        clock: Callable[[], str] = utc_now,
        new_password: Callable[[], str] = lambda: secrets.token_urlsafe(24),
        default_backend: TrainerBackend = TrainerBackend.PYTORCHJOB,
    ) -> None:
        self._kube = kube
        self._default_backend = default_backend
        self._clock = clock
        self._new_password = new_password
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Last operator-written status per run uid: a child event may carry a parent body older than our
        # own last write, and deriving from it would repeat transitions (and their events). Kept as compact
        # JSON: a thousand status dicts as Python objects cost about 5x their JSON size, for the life of
        # the process.
        self._written: dict[str, str] = {}
        self._census = RunCensus()
        self._seen_children: dict[str, set[ChildKey]] = {}
        self._ledger: dict[str, str | None] = {}  # each run's LEDGER_ANNOTATION as last read or written

    def forget(self, uid: str) -> None:
        with self._locks_guard:
            self._locks.pop(uid, None)
            self._written.pop(uid, None)
            self._seen_children.pop(uid, None)
            self._ledger.pop(uid, None)
        self._census.forget(uid)

    def reconcile(self, body: Mapping[str, Any]) -> ReconcileResult:
        uid = body["metadata"].get("uid") or ""
        entry = (body["metadata"].get("annotations") or {}).get(LEDGER_ANNOTATION)
        self._ledger.setdefault(uid, entry)
        if uid not in self._written and body.get("status"):
            body = {**body, "status": trusted_status(body["status"], entry)}
        run = parse_run_manifest(
            body, source=f"{body['metadata'].get('namespace')}/{body['metadata'].get('name')}"
        )
        with self._lock_for(uid):
            return self._reconcile_locked(self._with_latest_status(run, uid))

    def _lock_for(self, uid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(uid, threading.Lock())

    def _with_latest_status(self, run: SpecForgeRun, uid: str) -> SpecForgeRun:
        written_json = self._written.get(uid)
        if written_json is None:
            return run
        # The operator's own fields as it last wrote them (the watch may lag), the trainer's as they are.
        live = run.status.model_dump(by_alias=True, mode="json", exclude_none=True) if run.status else {}
        merged = {**json.loads(written_json), **trainer_fields(live)}
        return run.model_copy(update={"status": SpecForgeRunStatus.model_validate(merged)})

    def _reconcile_locked(self, run: SpecForgeRun) -> ReconcileResult:
        finished = bool(run.status and run.status.phase and run.status.phase.is_finished)
        producers_active = finished and self._producers_active(run)
        plan = plan_children(
            run, finished=finished, producers_active=producers_active, default_backend=self._default_backend
        )
        leftover_ranks = self._leftover_ranks(run) if plan.workload.gang_restarts else 0
        served = self._kube.serves(plan.workload.api_version, plan.workload.kind)
        # A gang restart starts no rank while any rank of the failed workload remains; an API the cluster
        # does not serve is not applied (policies.backend reports it).
        if leftover_ranks or not served:
            plan = self._without_trainer_workload(plan)
        existing: dict[ChildKey, dict[str, Any]] = {}
        events: list[Event] = []
        rejected: list[str] = []
        if plan.auth_secret is not None:
            secret = self._ensure_auth_secret(run, rejected)
            if secret is not None:
                existing[("v1", "Secret", plan.auth_secret)] = secret
        for manifest in plan.to_apply:
            self._apply_into(run, manifest, existing, events, rejected)
        store_ready = plan.store_ready(existing)  # decided here, once; observe, status and policies read it
        for manifest in plan.gated:
            if store_ready:
                self._apply_into(run, manifest, existing, events, rejected)
                continue
            # Not applied while the store is not ready; one may exist (the store went away after it started).
            found = self._kube.get(*child_key(manifest)[:2], run.namespace, manifest["metadata"]["name"])
            if found is not None:
                existing[child_key(manifest)] = found
        spec_changed = run.status is not None and run.status.observed_generation != run.metadata.generation
        if spec_changed:
            self._prune(run, plan)
        elif run.status is not None:
            events = []  # apply warnings are news on a run's first reconcile and once per spec change
        observed = self._observe(run, plan, existing, store_ready)
        now = self._clock()
        unserved = None if served else (plan.workload.api_version, plan.workload.kind)
        outcome = self._evaluate_policies(
            run, plan, observed, existing, now, leftover_ranks, unserved, tuple(rejected)
        )
        if outcome.delete_run:
            self._kube.delete(API_VERSION, KIND, run.namespace, run.name)
            return ReconcileResult(run, {}, [], False)
        observed = dataclasses.replace(
            observed,
            policy_verdict=outcome.verdict,
            policy_conditions=outcome.conditions,
            policy_status={**outcome.status_fields, **plan.status_fields()},
        )
        status, derived_events = derive_status(run, observed, now)
        previous = operator_fields(run.status.to_wire()) if run.status else None
        written = status != previous
        if written:
            self._kube.patch_run_status(run.namespace, run.name, status)
        self._written[run.metadata.uid or ""] = json.dumps(status, separators=(",", ":"))
        self._record_in_ledger(run, status)
        self._census.observe(run.metadata.uid or "", status["phase"], run.spec.deployment_mode.value)
        self._carry_out(
            run, plan, outcome
        )  # after the status write, so a restart is counted before it happens
        return ReconcileResult(run, status, events + derived_events + list(outcome.events), written)

    def _record_in_ledger(self, run: SpecForgeRun, status: dict[str, Any]) -> None:
        entry = ledger_entry(status)
        uid = run.metadata.uid or ""
        if self._ledger.get(uid) != entry:
            self._kube.annotate_run(run.namespace, run.name, {LEDGER_ANNOTATION: entry})
            self._ledger[uid] = entry

    def _leftover_ranks(self, run: SpecForgeRun) -> int:
        """Trainer pods still present while the run is restarting (only then are they listed)."""
        if not (run.status and run.status.phase is Phase.RESTARTING):
            return 0
        selector = f"{RUN_LABEL}={run.name},{COMPONENT_LABEL}=trainer"
        return len(self._kube.list("v1", "Pod", run.namespace, selector))

    def _producers_active(self, run: SpecForgeRun) -> bool:
        """A pod of the run's producer Job still runs (its status says so; the Job may be gone)."""
        if run.spec.producers is None:
            return False
        job = self._kube.get("batch/v1", "Job", run.namespace, ChildNames(run.name).producers)
        return bool(job and (job.get("status") or {}).get("active"))

    @staticmethod
    def _without_trainer_workload(plan: ChildrenPlan) -> ChildrenPlan:
        trainer = plan.trainer_key
        return dataclasses.replace(
            plan,
            to_apply=[m for m in plan.to_apply if child_key(m) != trainer],
            gated=[m for m in plan.gated if child_key(m) != trainer],
        )

    def _evaluate_policies(
        self,
        run: SpecForgeRun,
        plan: ChildrenPlan,
        observed: Observed,
        existing: dict[ChildKey, dict[str, Any]],
        now: str,
        leftover_ranks: int,
        unserved_workload: tuple[str, str] | None,
        rejected_children: tuple[str, ...],
    ) -> PolicyOutcome:
        workload = existing.get(plan.trainer_key)
        metadata = (workload or {}).get("metadata") or {}
        created = metadata.get("creationTimestamp")
        pods = self._live_run_pods(run)
        return evaluate_policies(
            PolicyInputs(
                run=run,
                workload=observed.workload,
                workload_uid=metadata.get("uid"),
                workload_created=datetime.fromisoformat(created) if created else None,
                gang_restarts=plan.workload.gang_restarts,
                failure_detail=observed.pod_failure or "",
                leftover_ranks=leftover_ranks,
                workload_suspended=workload_suspended(workload),
                schedulability=self._schedulability(run, observed, pods),
                now=datetime.fromisoformat(now),
                pod_health=pod_health(pods) if pods is not None else None,
                rejected_children=rejected_children,
                unserved_workload=unserved_workload,
                kueue_served=self._kube.serves(KUEUE_API_VERSION, KUEUE_QUEUE_KIND)
                if is_queue_managed(run)
                else None,
            )
        )

    def _live_run_pods(self, run: SpecForgeRun) -> list[dict[str, Any]] | None:
        """The run's pods while it is not finished (a pod stuck on its image, its env's Secret or a crash
        loop is seen within one resync); None once it is."""
        if run.status and run.status.phase and run.status.phase.is_finished:
            return None
        return self._kube.list("v1", "Pod", run.namespace, f"{RUN_LABEL}={run.name}")

    def _schedulability(
        self, run: SpecForgeRun, observed: Observed, pods: list[dict[str, Any]] | None
    ) -> Schedulability | None:
        """Judged only while some pods are pending (the managed store's too, while it is not ready),
        or to clear an earlier Schedulable=False; never once the run is finished (``pods`` is None)."""
        pending = [observed.workload, *([observed.producers] if observed.producers else [])]
        previously_unschedulable = any(
            c.type == SCHEDULABLE_CONDITION and c.status == "False"
            for c in (run.status.conditions if run.status else [])
        )
        workloads_settled = all(w.state is not WorkloadState.PENDING for w in pending)
        if pods is None or (not previously_unschedulable and workloads_settled and observed.store_ready):
            return None
        verdict = pod_schedulability(pods)
        if verdict is not None and waits_for_claims(verdict):
            claims = self._kube.list("v1", "PersistentVolumeClaim", run.namespace, f"{RUN_LABEL}={run.name}")
            verdict = with_unbound_claims(verdict, claims)
        return verdict

    def _carry_out(self, run: SpecForgeRun, plan: ChildrenPlan, outcome: PolicyOutcome) -> None:
        names = ChildNames(run.name)
        if outcome.delete_trainer_workload or outcome.stop_workloads:
            # Foreground: the workload goes only after its pods, so no old rank overlaps a new one.
            api_version, kind, name = plan.trainer_key
            self._kube.delete(api_version, kind, run.namespace, name, propagation="Foreground")
        if outcome.stop_workloads and run.spec.producers is not None:
            self._kube.delete("batch/v1", "Job", run.namespace, names.producers)

    def _apply_into(
        self,
        run: SpecForgeRun,
        manifest: dict[str, Any],
        existing: dict[ChildKey, dict[str, Any]],
        events: list[Event],
        rejected: list[str],
    ) -> None:
        if not self._known_child(run, manifest):
            found = self._kube.get(*child_key(manifest)[:2], run.namespace, manifest["metadata"]["name"])
            if found is not None and not self._owns(run, found):
                rejected.append(_not_ours(manifest["kind"], manifest["metadata"]["name"]))
                return
        if is_queue_managed(run) and suspend_path(manifest) is not None:
            found = self._kube.get(*child_key(manifest)[:2], run.namespace, manifest["metadata"]["name"])
            ownership = suspend_ownership(run, workload_exists=found is not None)
            if ownership is SuspendOwnership.CREATE_SUSPENDED:
                suspended = self._kube.create(with_suspend(manifest, ownership))
                if suspended is not None:
                    existing[child_key(manifest)] = suspended
                    self._count_created(run, manifest)
                    return
                ownership = SuspendOwnership.QUEUE  # created meanwhile by another reconcile
            manifest = with_suspend(manifest, ownership)
        try:
            existing[child_key(manifest)], created = self._kube.apply_reporting_creation(manifest)
            if created:
                self._count_created(run, manifest)
        except ApiException as error:
            if error.status not in (403, 422):
                raise
            kind, name = manifest["kind"], manifest["metadata"]["name"]
            found = self._kube.get(manifest["apiVersion"], kind, manifest["metadata"]["namespace"], name)
            if found is None:
                # Refused outright (invalid, forbidden, over quota): the run says so and the resync tries
                # again; the operator goes on with its other children and runs.
                rejected.append(f"{kind} {name}: {api_error_message(error)}")
                return
            # An immutable field (e.g. a Job's pod template) changed: keep the running object, tell the user.
            events.append(
                Event("Warning", "SpecChangeNotApplied", f"{kind} {name} rejected the change: {error.reason}")
            )
            existing[child_key(manifest)] = found

    def _known_child(self, run: SpecForgeRun, manifest: dict[str, Any]) -> bool:
        """This run made it: its status lists it (across operator restarts) or this process created it."""
        known = {(c.api_version, c.kind, c.name) for c in (run.status.children if run.status else [])}
        return child_key(manifest) in known or child_key(manifest) in self._seen_children.get(
            run.metadata.uid or "", set()
        )

    def _count_created(self, run: SpecForgeRun, manifest: dict[str, Any]) -> None:
        # Restored: it existed before, as the last status (across operator restarts) or this process saw.
        record_child_created(manifest["kind"], restored=self._known_child(run, manifest))
        self._seen_children.setdefault(run.metadata.uid or "", set()).add(child_key(manifest))

    def _ensure_auth_secret(self, run: SpecForgeRun, rejected: list[str]) -> dict[str, Any] | None:
        name = ChildNames(run.name).redis_auth
        found = self._kube.get("v1", "Secret", run.namespace, name)
        if found is not None and not self._owns(run, found):
            rejected.append(_not_ours("Secret", name))
            return None
        if found is not None and REDIS_CONFIG_KEY not in (found.get("data") or {}):
            # Made by an operator that passed the password in argv: add the server's config file.
            secret = redis_auth_secret(run, base64.b64decode(found["data"][PASSWORD_KEY]).decode())
            return self._kube.apply(secret)
        if found is not None:
            return found
        secret = redis_auth_secret(run, self._new_password())
        return self._kube.create(secret) or self._kube.get("v1", "Secret", run.namespace, name) or secret

    def _prune(self, run: SpecForgeRun, plan: ChildrenPlan) -> None:
        auth_secret = ChildNames(run.name).redis_auth
        if ("v1", "Secret", auth_secret) not in plan.allowed:
            found = self._kube.get("v1", "Secret", run.namespace, auth_secret)
            if found is not None and self._owns(run, found):
                self._kube.delete("v1", "Secret", run.namespace, auth_secret)
        for api_version, kind in PRUNABLE_KINDS:
            for child in self._kube.list(api_version, kind, run.namespace, f"{RUN_LABEL}={run.name}"):
                allowed = (api_version, kind, child["metadata"]["name"]) in plan.allowed
                if self._owns(run, child) and not allowed:
                    self._kube.delete(api_version, kind, run.namespace, child["metadata"]["name"])

    @staticmethod
    def _owns(run: SpecForgeRun, child: Mapping[str, Any]) -> bool:
        owners = child["metadata"].get("ownerReferences") or []
        return any(owner.get("uid") == run.metadata.uid for owner in owners)

    def _observe(
        self,
        run: SpecForgeRun,
        plan: ChildrenPlan,
        existing: dict[ChildKey, dict[str, Any]],
        store_ready: bool,
    ) -> Observed:
        names = ChildNames(run.name)
        workload = plan.workload.observe(existing.get(plan.trainer_key))
        producers: WorkloadObservation | None = None
        if run.spec.producers is not None:
            producers = observe_job(existing.get(("batch/v1", "Job", names.producers)))
        pod_failure = None
        if workload.state is WorkloadState.FAILED:
            pod_failure = self._pod_failure(run, TRAINER_COMPONENT)
        elif producers is not None and producers.state is WorkloadState.FAILED:
            pod_failure = self._pod_failure(run, PRODUCER_COMPONENT)
        children = [
            {"apiVersion": api_version, "kind": kind, "name": name} for api_version, kind, name in existing
        ]
        return Observed(
            store_ready=store_ready,
            workload=workload,
            producers=producers,
            children=children,
            store_endpoint=plan.store.url if plan.store else None,
            pod_failure=pod_failure,
        )

    def _pod_failure(self, run: SpecForgeRun, component: str) -> str | None:
        selector = f"{RUN_LABEL}={run.name},{COMPONENT_LABEL}={component}"
        for pod in self._kube.list("v1", "Pod", run.namespace, selector):
            status = pod.get("status") or {}
            if status.get("phase") != "Failed":
                continue
            for container in status.get("containerStatuses") or []:
                terminated = (container.get("state") or {}).get("terminated")
                if terminated:
                    detail = terminated.get("message") or ""
                    return (
                        f"pod {pod['metadata']['name']}: {terminated.get('reason', 'Error')} "
                        f"(exit code {terminated.get('exitCode')}) {detail}".strip()
                    )
            return f"pod {pod['metadata']['name']}: {status.get('reason', 'Failed')} {status.get('message', '')}".strip()
        return None


def _not_ours(kind: str, name: str) -> str:
    return (
        f"{kind} {name} already exists and this run does not own it: it is left as it is "
        "(delete it, or give the run another name)"
    )
