"""The JobSet backend in real containers: a dataflow_colocated run whose ranks meet through JobSet's headless
Service trains to Succeeded with the same final draft weights as the PyTorchJob-backed run, byte for byte.

Both runs start the same argv with the same rendezvous env (specforge_api.pod_contract); only the workload
API differs. Applied with ``kubectl apply`` and reconciled by the operator the chart installed.
"""

from __future__ import annotations

import pytest
from e2e.realpods.conftest import RealRuns, load_example, newest_weights
from e2e.realpods.test_modes_in_real_pods import SHORT
from e2e.realpods.test_modes_in_real_pods import _train_in_cluster as train_in_cluster
from specforge_operator.kube import KubeApi


def test_a_jobset_backed_run_trains_the_weights_the_pytorchjob_backed_run_trains(
    real_runs: RealRuns, real_node: str
) -> None:
    if not KubeApi(real_runs.core.api_client).serves("jobset.x-k8s.io/v1alpha2", "JobSet"):
        pytest.skip("this cluster does not serve JobSet (hack/cluster.sh and hack/e2e-kind.sh install it)")
    by_pytorchjob = load_example("dataflow-colocated.yaml", training=SHORT, trainer={"backend": "pytorchjob"})
    by_pytorchjob["metadata"]["name"] = "dataflow-ptj"
    by_jobset = load_example("dataflow-colocated.yaml", training=SHORT, trainer={"backend": "jobset"})
    by_jobset["metadata"]["name"] = "dataflow-jobset"

    finished = train_in_cluster(real_runs, by_jobset, real_node)
    assert finished["status"]["trainerBackend"] == "jobset"
    hostnames = sorted(pod.spec.hostname for pod in real_runs.pods("dataflow-jobset", "trainer"))
    assert hostnames == ["dataflow-jobset-trainer-node-0-0", "dataflow-jobset-trainer-node-0-1"]
    train_in_cluster(real_runs, by_pytorchjob, real_node)

    jobset_weights = newest_weights(real_runs.claim_dir("dataflow-jobset-checkpoints"))
    assert jobset_weights == newest_weights(real_runs.claim_dir("dataflow-ptj-checkpoints"))
