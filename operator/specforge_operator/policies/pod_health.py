"""Pods that cannot start or keep crashing → a ``PodsHealthy`` condition naming the pod and the reason.

A pod waiting on an image that cannot be pulled, a Secret or ConfigMap its env names that does not exist,
or a container in a crash loop keeps its workload Pending or Running forever: nothing fails, so without
this the run would say Pending or Running and nothing else. The kubelet already wrote why on the pod (a
container's ``state.waiting.reason``); the run repeats it, and the condition clears once no pod is stuck.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from specforge_operator.policies.schedulability import live_pods

PODS_HEALTHY_CONDITION = "PodsHealthy"
HEALTHY_REASON = "NoPodStuck"
# Waiting reasons that do not resolve by themselves (ContainerCreating and PodInitializing do).
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "CrashLoopBackOff",
    }
)


@dataclass(frozen=True)
class PodHealth:
    healthy: bool
    reason: str
    message: str


def _stuck_containers(pod: Mapping[str, Any]) -> Iterable[tuple[str, str, str]]:
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in STUCK_REASONS:
            yield container.get("name", "?"), waiting["reason"], waiting.get("message") or ""


def pod_health(pods: Iterable[Mapping[str, Any]]) -> PodHealth | None:
    """Whether any of the run's live pods is stuck; None when no live pod has container statuses yet."""
    judged = [pod for pod in live_pods(pods) if (pod.get("status") or {}).get("containerStatuses")]
    if not judged:
        return None
    stuck = [
        (pod["metadata"]["name"], container, reason, message)
        for pod in sorted(judged, key=lambda pod: pod["metadata"]["name"])
        for container, reason, message in _stuck_containers(pod)
    ]
    if not stuck:
        return PodHealth(True, HEALTHY_REASON, f"no pod of {len(judged)} is stuck")
    pod, container, reason, message = stuck[0]
    detail = f"pod {pod} container {container}: {reason}" + (f": {message}" if message else "")
    pods_stuck = len({name for name, *_ in stuck})
    return PodHealth(False, reason, f"{pods_stuck} of {len(judged)} pods stuck; {detail}")
