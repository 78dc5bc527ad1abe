"""kopf handlers: thin wiring from Kubernetes events to :class:`Reconciler`.

Every trigger (create, resume, spec update, the operator's resync loop, and any change to a Job,
PyTorchJob, JobSet, Deployment or ConfigMap carrying the run label) ends in the same idempotent
reconcile, which is what turns kopf's edge-triggered handlers into a level-based controller. Children are
garbage-collected through owner references, and the periodic resync is one operator-level loop
(:mod:`.resync`) rather than a kopf timer per run, so runs carry no finalizer: deleting one never needs a
running operator. Every setting is read once, in :func:`configure`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from typing import Any, cast

import kopf
from specforge_api.manifest import ManifestError
from specforge_api.pod_contract import RUN_LABEL
from specforge_api.run import API_VERSION, GROUP, KIND, PLURAL, VERSION

from specforge_operator.echoes import is_own_echo
from specforge_operator.kube import KubeApi, load_api_client
from specforge_operator.metrics import record_reconcile
from specforge_operator.reconcile import Reconciler
from specforge_operator.resync import Peering, ResyncLoop, served_namespaces
from specforge_operator.takeover import is_listing_event, status_may_be_stale
from specforge_operator.workloads import cluster_default_backend

RUN_RESOURCE = (GROUP, VERSION, PLURAL)
RETRY_BACKOFF_SECONDS = 2.0
# A restarting run waits for the failed workload's ranks to exit; pods are not watched, so look often.
RESTARTING_RESYNC_SECONDS = 2.0


def _env_number(name: str, default: str, *, minimum: float) -> float:
    value = float(os.environ.get(name, default))
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, got {value:g}")
    return value


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # How often every run is reconciled even when nothing changed: the safety net for missed events.
    resync_seconds = _env_number("SPECFORGE_RESYNC_SECONDS", "60", minimum=1)
    # A watch stream that delivers nothing (not even a bookmark) for this long is presumed dead and
    # reopened; the API server sends bookmarks about every minute.
    watch_inactivity_seconds = _env_number("SPECFORGE_WATCH_INACTIVITY_SECONDS", "90", minimum=1)
    object_workers = int(_env_number("SPECFORGE_OBJECT_WORKERS", "100", minimum=1))
    # How long a replica's peering record counts as alive: a SIGKILLed active replica is replaced after
    # it. kopf renews the record 5-10 s before expiry whatever the lifetime, so 10 s keeps the same slack
    # for a slow renewal as a longer one (renewing every 1-5 s) and halves the worst-case take-over wait.
    peering_lifetime_seconds = int(_env_number("SPECFORGE_PEERING_LIFETIME_SECONDS", "10", minimum=1))
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events say what happened; kopf's would be noise
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = watch_inactivity_seconds
    settings.peering.lifetime = peering_lifetime_seconds
    settings.execution.max_workers = int(os.environ.get("SPECFORGE_WORKERS", "8"))
    # At most this many objects are processed at once; the rest wait in the watch stream, not in memory.
    # Unbounded, a burst of 1,000 new runs held hundreds of half-processed objects at once, and the heap
    # stayed at that high-water mark (fragmented) after the burst: 205 MiB, against 150 MiB with 50.
    settings.queueing.worker_limit = object_workers
    # A worker lingers this long after its object's last event; with a bounded pool, kopf's 5 s let at most
    # 20 objects/s through a take-over's listing of mostly unchanged runs.
    settings.queueing.idle_timeout = 0.5
    # Read once: a bad SPECFORGE_TRAINER_BACKEND stops start-up, not every reconcile.
    default_backend = cluster_default_backend()
    memo.kube = KubeApi(load_api_client())
    memo.reconciler = Reconciler(memo.kube, default_backend=default_backend)
    peering = settings.peering
    memo.resync = ResyncLoop(
        memo.kube,
        lambda run: _reconcile_and_report(kopf.Body(cast(kopf.RawBody, run)), memo),
        namespaces=served_namespaces(sys.argv[1:]),
        peering=Peering(None if peering.standalone else peering.name, peering.priority, peering.clusterwide),
        interval=resync_seconds,
        restarting_interval=RESTARTING_RESYNC_SECONDS,
    )
    # The loop posts events with kopf.event, which needs the operator's context (its event queue).
    memo.resync.start(contextvars.copy_context().run)


@kopf.on.cleanup()
def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    memo.resync.stop()


def _reconcile_and_report(body: kopf.Body, memo: kopf.Memo) -> str | None:
    """Reconcile, record metrics, post the events; the phase left, for the resync loop's bookkeeping."""
    started = time.perf_counter()
    try:
        result = memo.reconciler.reconcile(body)
    except ManifestError as error:
        record_reconcile("invalid", time.perf_counter() - started)
        kopf.event(body, type="Warning", reason="InvalidSpec", message=str(error))
        raise kopf.PermanentError(str(error)) from error
    except Exception:
        record_reconcile("error", time.perf_counter() - started)
        raise
    record_reconcile("changed" if result.status_written else "unchanged", time.perf_counter() - started)
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
    phase: str | None = result.status.get("phase")
    memo.resync.note_phase(body["metadata"]["namespace"], body["metadata"]["name"], phase)
    return phase


# On start-up or take-over every run is "resumed"; a settled one whose status reflects its spec is left to
# the resync loop, so a replica that takes over reaches the runs that changed first, not after all others.
@kopf.on.resume(*RUN_RESOURCE, backoff=RETRY_BACKOFF_SECONDS)
def run_resumed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if status_may_be_stale(body):
        _reconcile_and_report(body, memo)


# A failed reconcile (e.g. the API server briefly unavailable) is retried soon, not after kopf's 60 s.
@kopf.on.create(*RUN_RESOURCE, backoff=RETRY_BACKOFF_SECONDS)
@kopf.on.update(*RUN_RESOURCE, field="spec", backoff=RETRY_BACKOFF_SECONDS)
def run_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile_and_report(body, memo)


@kopf.on.delete(*RUN_RESOURCE, optional=True)
def run_deleted(uid: str, memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.forget(uid)


_CHILD_FILTER: dict[str, Any] = {"labels": {RUN_LABEL: kopf.PRESENT}}


# The parent run is read when a child brings news, not kept in a kopf index: an index makes kopf hold back
# every handler until all listed runs are indexed, which on a take-over of 1,000 runs cost 15 s (each
# indexed run wakes every other waiting one), and it kept a second reference to every run body.
@kopf.on.event("batch", "v1", "jobs", **_CHILD_FILTER)
@kopf.on.event("kubeflow.org", "v1", "pytorchjobs", **_CHILD_FILTER)
@kopf.on.event("jobset.x-k8s.io", "v1alpha2", "jobsets", **_CHILD_FILTER)
@kopf.on.event("apps", "v1", "deployments", **_CHILD_FILTER)
@kopf.on.event("", "v1", "configmaps", **_CHILD_FILTER)
def child_changed(
    type: str | None,
    body: kopf.Body,
    namespace: str | None,
    labels: kopf.Labels,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    # A listed child is not news by itself: the run's own resume (start-up, take-over) or the resync loop
    # reconciles what may have changed while no replica watched (see takeover).
    if is_listing_event(type) or is_own_echo(type, body) or namespace is None:
        return
    run = memo.kube.get(API_VERSION, KIND, namespace, labels[RUN_LABEL])
    if run is not None:
        _reconcile_and_report(kopf.Body(run), memo)
