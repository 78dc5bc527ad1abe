"""The two trainer backends as the e2e tests see them: where each keeps what a test checks or changes.

Written out here rather than taken from the operator, so a test checks the operator against the backends'
own APIs (PyTorchJob v1's ``runPolicy.suspend``, JobSet's ``spec.suspend``), not against itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specforge_operator.kube import KubeApi


@dataclass(frozen=True)
class Backend:
    name: str  # spec.trainer.backend
    api_version: str
    kind: str
    plural: str
    suspend_path: tuple[str, ...]
    # A gang restart replaces the workload object itself (the operator deletes and recreates a PyTorchJob);
    # JobSet keeps its object and recreates its Jobs.
    replaced_on_restart: bool

    def __str__(self) -> str:
        return self.name

    def workload(self, kube: KubeApi, namespace: str, run_name: str) -> dict[str, Any] | None:
        return kube.get(self.api_version, self.kind, namespace, f"{run_name}-trainer")

    def suspended(self, workload: dict[str, Any]) -> bool:
        node: Any = workload
        for key in self.suspend_path:
            node = (node or {}).get(key)
        return bool(node)

    def admit(self, kube: KubeApi, namespace: str, run_name: str) -> None:
        """Admission as Kueue does it: unsuspend the workload under Kueue's own field manager."""
        body: dict[str, Any] = {self.suspend_path[-1]: False}
        for key in reversed(self.suspend_path[:-1]):
            body = {key: body}
        kube._call(
            "PATCH",
            f"/apis/{self.api_version}/namespaces/{namespace}/{self.plural}/{run_name}-trainer",
            body=body,
            query=[("fieldManager", "kueue-admission")],
            content_type="application/merge-patch+json",
        )


PYTORCHJOB = Backend(
    "pytorchjob", "kubeflow.org/v1", "PyTorchJob", "pytorchjobs", ("spec", "runPolicy", "suspend"), True
)
JOBSET = Backend("jobset", "jobset.x-k8s.io/v1alpha2", "JobSet", "jobsets", ("spec", "suspend"), False)
BACKENDS = [PYTORCHJOB, JOBSET]
