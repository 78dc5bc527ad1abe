"""kopf handlers: thin wiring from Kubernetes events to :class:`Reconciler`.

Every trigger (create, resume, spec update, a periodic timer, and any change to a Job, PyTorchJob,
Deployment or ConfigMap carrying the run label) ends in the same idempotent reconcile, which is what turns kopf's
edge-triggered handlers into a level-based controller. Children are garbage-collected through owner
references, so no finalizer is needed.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import kopf
from specforge_api.manifest import ManifestError
from specforge_api.run import API_VERSION, GROUP, KIND, PLURAL, VERSION
from specforge_api.status import Phase

from specforge_operator.echoes import is_own_echo
from specforge_operator.kube import KubeApi, load_api_client
from specforge_operator.metrics import record_reconcile
from specforge_operator.reconcile import Reconciler
from specforge_operator.render.meta import RUN_LABEL
from specforge_operator.takeover import is_listing_event, status_may_be_stale

RESYNC_SECONDS = float(os.environ.get("SPECFORGE_RESYNC_SECONDS", "60"))
RUN_RESOURCE = (GROUP, VERSION, PLURAL)
RETRY_BACKOFF_SECONDS = 2.0
RESTARTING_RESYNC_SECONDS = 2.0
# A watch stream that delivers nothing (not even a bookmark) for this long is presumed dead and reopened;
# the API server sends bookmarks about every minute.
WATCH_INACTIVITY_SECONDS = float(os.environ.get("SPECFORGE_WATCH_INACTIVITY_SECONDS", "90"))
# How many objects kopf processes at once (see configure).
OBJECT_WORKERS = int(os.environ.get("SPECFORGE_OBJECT_WORKERS", "100"))
if OBJECT_WORKERS < 1:
    raise ValueError(f"SPECFORGE_OBJECT_WORKERS must be at least 1, got {OBJECT_WORKERS}")
# How long a replica's peering record counts as alive: a SIGKILLed active replica is replaced after it.
# kopf renews the record 5-10 s before expiry whatever the lifetime, so 10 s keeps the same slack for a
# slow renewal as a longer one (renewing every 1-5 s) and halves the worst-case take-over wait of 20 s.
PEERING_LIFETIME_SECONDS = int(os.environ.get("SPECFORGE_PEERING_LIFETIME_SECONDS", "10"))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events say what happened; kopf's would be noise
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = WATCH_INACTIVITY_SECONDS
    settings.peering.lifetime = PEERING_LIFETIME_SECONDS
    settings.execution.max_workers = int(os.environ.get("SPECFORGE_WORKERS", "8"))
    # At most this many objects are processed at once; the rest wait in the watch stream, not in memory.
    # Unbounded, a burst of 1,000 new runs held hundreds of half-processed objects at once, and the heap
    # stayed at that high-water mark (fragmented) after the burst: 205 MiB, against 150 MiB with 50.
    settings.queueing.worker_limit = OBJECT_WORKERS
    # A worker lingers this long after its object's last event; with a bounded pool, kopf's 5 s let at most
    # 20 objects/s through a take-over's listing of mostly unchanged runs.
    settings.queueing.idle_timeout = 0.5
    # A run deleted while its resync timer is mid-reconcile keeps kopf's finalizer until the timer is seen
    # to exit; kopf re-checks every 60 s by default, which held up garbage collection for a minute.
    settings.background.cancellation_polling = 1.0
    memo.kube = KubeApi(load_api_client())
    memo.reconciler = Reconciler(memo.kube)


def _reconcile_and_report(body: kopf.Body, reconciler: Reconciler) -> None:
    started = time.perf_counter()
    try:
        result = reconciler.reconcile(body)
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


# On start-up or take-over every run is "resumed"; a settled one whose status reflects its spec is left to
# the resync timer, so a replica that takes over reaches the runs that changed first, not after all others.
@kopf.on.resume(*RUN_RESOURCE, backoff=RETRY_BACKOFF_SECONDS)
def run_resumed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if status_may_be_stale(body):
        _reconcile_and_report(body, memo.reconciler)


# A failed reconcile (e.g. the API server briefly unavailable) is retried soon, not after kopf's 60 s.
@kopf.on.create(*RUN_RESOURCE, backoff=RETRY_BACKOFF_SECONDS)
@kopf.on.update(*RUN_RESOURCE, field="spec", backoff=RETRY_BACKOFF_SECONDS)
def run_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile_and_report(body, memo.reconciler)


@kopf.timer(*RUN_RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile_and_report(body, memo.reconciler)


# A restarting run waits for the failed workload's ranks to exit; pods are not watched, so look often.
@kopf.timer(
    *RUN_RESOURCE,
    interval=RESTARTING_RESYNC_SECONDS,
    when=lambda status, **_: status.get("phase") == Phase.RESTARTING.value,
)
def restarting_resync(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _reconcile_and_report(body, memo.reconciler)


@kopf.on.delete(*RUN_RESOURCE, optional=True)
def run_deleted(uid: str, memo: kopf.Memo, **_: Any) -> None:
    memo.reconciler.forget(uid)


_CHILD_FILTER: dict[str, Any] = {"labels": {RUN_LABEL: kopf.PRESENT}}


# The parent run is read when a child brings news, not kept in a kopf index: an index makes kopf hold back
# every handler until all listed runs are indexed, which on a take-over of 1,000 runs cost 15 s (each
# indexed run wakes every other waiting one), and it kept a second reference to every run body.
@kopf.on.event("batch", "v1", "jobs", **_CHILD_FILTER)
@kopf.on.event("kubeflow.org", "v1", "pytorchjobs", **_CHILD_FILTER)
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
    # A listed child is not news by itself: the run's own resume (start-up, take-over) or its resync timer
    # reconciles what may have changed while no replica watched (see takeover).
    if is_listing_event(type) or is_own_echo(type, body) or namespace is None:
        return
    run = memo.kube.get(API_VERSION, KIND, namespace, labels[RUN_LABEL])
    if run is not None:
        _reconcile_and_report(kopf.Body(run), memo.reconciler)
