"""One operator-level resync loop instead of a kopf timer per run, so runs carry no finalizer.

kopf puts a finalizer on every object a timer watches; with a resync timer on each run, a run deleted
while no operator ran (the operator uninstalled first) stayed Terminating forever, and so did its
namespace. This loop needs nothing on the runs: every ``interval`` it lists the runs of the namespaces the
operator serves and reconciles each (the safety net for missed events and the clock of the timed
policies), and between those passes it looks every ``restarting_interval`` at the runs it last saw
Restarting (a gang restart waits for the failed ranks to exit, and pods are not watched).

Only an active replica resyncs: with peering, the one kopf keeps active, i.e. whose priority is the
highest among the live peers of its peering object (kopf pauses its own handlers by the same rule).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from specforge_api.run import API_VERSION, KIND
from specforge_api.status import Phase

from specforge_operator.kube import KubeApi

logger = logging.getLogger(__name__)

RunKey = tuple[str, str]  # (namespace, name)


def served_namespaces(argv: Sequence[str]) -> list[str] | None:
    """The namespaces given to ``kopf run`` (``--namespace X``, ``-n X``, ``--namespace=X``); None: all."""
    found: list[str] = []
    for index, arg in enumerate(argv):
        if arg.startswith("--namespace="):
            found.append(arg.split("=", 1)[1])
        elif arg in ("--namespace", "-n") and index + 1 < len(argv):
            found.append(argv[index + 1])
    return found or None


@dataclass(frozen=True)
class Peering:
    """This replica's place in kopf peering: None name means standalone (always active)."""

    name: str | None
    priority: int
    clusterwide: bool


def _peer_alive(record: Mapping[str, Any], now: datetime) -> bool:
    seen = record.get("lastseen")
    if not seen:
        return False
    last = datetime.fromisoformat(seen.replace("Z", "+00:00"))
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return (now - last).total_seconds() < float(record.get("lifetime") or 60)


def is_highest_live_peer(peering_status: Mapping[str, Any], priority: int, now: datetime) -> bool:
    """kopf's rule: a replica works when no other live peer has a higher or the same priority. Its own
    record counts once, so a second live record with its priority means a tie (kopf pauses both)."""
    live = [record for record in peering_status.values() if _peer_alive(record, now)]
    higher = [record for record in live if int(record.get("priority", 0)) > priority]
    same = [record for record in live if int(record.get("priority", 0)) == priority]
    return not higher and len(same) <= 1


class ResyncLoop:
    """A thread: a full pass over the served runs every ``interval``, the Restarting ones in between."""

    def __init__(
        self,
        kube: KubeApi,
        reconcile: Callable[[dict[str, Any]], str | None],
        *,
        namespaces: list[str] | None,
        peering: Peering,
        interval: float,
        restarting_interval: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._kube = kube
        self._reconcile = reconcile
        self._namespaces = namespaces
        self._peering = peering
        self._interval = interval
        self._restarting_interval = restarting_interval
        self._clock = clock
        self._restarting: set[RunKey] = set()
        self._restarting_guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, run_in: Callable[[Callable[[], None]], None] = lambda target: target()) -> None:
        """Start the loop's thread; ``run_in`` wraps its body (e.g. in the operator's context)."""
        self._thread = threading.Thread(
            target=run_in, args=(self._run,), name="specforge-resync", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        ticks_per_pass = max(1, round(self._interval / self._restarting_interval))
        tick = 0
        while not self._stop.wait(self._restarting_interval):
            tick += 1
            full_pass = tick % ticks_per_pass == 0
            with self._restarting_guard:
                due = full_pass or bool(self._restarting)
            try:
                if not due or not self.active():  # the peering object is read only when there is work
                    continue
                if full_pass:
                    self.resync_all()
                else:
                    self.resync_restarting()
            except Exception:  # one failed pass must not end the loop; the next one retries
                logger.exception("resync pass failed")

    def active(self) -> bool:
        peering = self._peering
        if peering.name is None:
            return True
        if peering.clusterwide:
            found = self._kube.get("kopf.dev/v1", "ClusterKopfPeering", "", peering.name)
        else:
            found = self._kube.get("kopf.dev/v1", "KopfPeering", (self._namespaces or [""])[0], peering.name)
        status = (found or {}).get("status") or {}
        return is_highest_live_peer(status, peering.priority, self._clock())

    def resync_all(self) -> None:
        runs = [run for namespace in self._namespaces or [""] for run in self._list(namespace)]
        self._each(runs)

    def resync_restarting(self) -> None:
        with self._restarting_guard:
            keys = sorted(self._restarting)
        runs = [self._kube.get(API_VERSION, KIND, namespace, name) for namespace, name in keys]
        for key, run in zip(keys, runs, strict=True):
            if run is None:
                self.note_phase(*key, None)
        self._each(run for run in runs if run is not None)

    def note_phase(self, namespace: str, name: str, phase: str | None) -> None:
        """Every reconcile (from any trigger) reports the phase it left: Restarting runs are looked at often."""
        with self._restarting_guard:
            if phase == Phase.RESTARTING.value:
                self._restarting.add((namespace, name))
            else:
                self._restarting.discard((namespace, name))

    def _list(self, namespace: str) -> list[dict[str, Any]]:
        return self._kube.list(API_VERSION, KIND, namespace, "")

    def _each(self, runs: Iterable[dict[str, Any]]) -> None:
        for run in runs:
            if self._stop.is_set():
                return
            if run["metadata"].get("deletionTimestamp"):
                continue
            namespace, name = run["metadata"]["namespace"], run["metadata"]["name"]
            try:
                self._reconcile(run)  # reports its phase through note_phase
            except Exception:  # one run's failure must not cost the others their resync
                logger.exception("[%s/%s] Resync failed.", namespace, name)
            else:
                logger.info("[%s/%s] Resync succeeded.", namespace, name)
