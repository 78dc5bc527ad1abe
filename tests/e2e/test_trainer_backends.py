"""A cluster with only JobSet (no training-operator, no PyTorchJob CRD): durable runs use JobSet there, and a
run asking for the missing backend waits with a reason until the backend is installed.

A private cluster (operator_harness) started without training-operator; the operator's default backend is
jobset, as the chart's `trainerBackend: jobset` sets it. KWOK plays the kubelet.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from _support.operator_process import OperatorProcess
from e2e.backends import JOBSET, PYTORCHJOB
from e2e.conftest import HACK_DIR, KWOK_RUN_DURATION_ANNOTATION, LONG_RUN, kwok_only_clusters
from e2e.operator_harness import (
    PrivateCluster,
    delete_namespace,
    new_namespace,
    private_cluster,
    start_operator,
)
from e2e.specforgerun.conftest import Runs, condition, wait_for
from kubernetes.client.exceptions import ApiException
from specforge_operator.kube import KubeApi
from unit.operator.builders import run_manifest


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with kwok_only_clusters(), private_cluster("backends", SPECFORGE_TRAINING_OPERATOR="0") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def operator(cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = start_operator(
        cluster, tmp_path_factory.mktemp("operator"), env={"SPECFORGE_TRAINER_BACKEND": JOBSET.name}
    )
    yield process
    process.stop()


@pytest.fixture
def runs(cluster: PrivateCluster, operator: OperatorProcess) -> Iterator[Runs]:
    with cluster.api_client() as api:
        namespace = new_namespace(api)
        try:
            yield Runs(api, namespace)
        except BaseException:
            print(operator.log_tail())
            raise
        finally:
            delete_namespace(api, namespace)


def test_durable_runs_train_on_jobset_where_it_is_the_only_backend(runs: Runs) -> None:
    kube = KubeApi(runs.api.api_client)
    assert not kube.serves(PYTORCHJOB.api_version, PYTORCHJOB.kind), "this cluster must lack PyTorchJob"
    quick = {KWOK_RUN_DURATION_ANNOTATION: "3s"}
    runs.create(run_manifest("dataflow_colocated", "solo", trainer={"replicas": 2, "podAnnotations": quick}))
    jobset = wait_for(lambda: JOBSET.workload(kube, runs.namespace, "solo"), "the JobSet")
    assert jobset["metadata"]["ownerReferences"][0]["name"] == "solo"
    # JobSet's headless Service, rank 0's address (MASTER_ADDR) resolves under it
    service = wait_for(
        lambda: kube.get("v1", "Service", runs.namespace, "solo-trainer"), "the headless Service"
    )
    assert service["spec"]["clusterIP"] == "None"
    pods = wait_for(
        lambda: (
            found
            if len(
                found := kube.list(
                    "v1", "Pod", runs.namespace, "specforge.io/run=solo,app.kubernetes.io/component=trainer"
                )
            )
            == 2
            else None
        ),
        "two trainer pods",
    )
    assert sorted(f"{p['spec']['hostname']}.{p['spec']['subdomain']}" for p in pods) == [
        "solo-trainer-node-0-0.solo-trainer",
        "solo-trainer-node-0-1.solo-trainer",
    ]
    succeeded = runs.wait_phase("solo", "Succeeded", timeout=120)
    assert succeeded["status"]["trainerBackend"] == "jobset"
    assert condition(succeeded, "Succeeded")["reason"] == "TrainingSucceeded"


def test_disaggregated_trainers_run_as_a_jobset_beside_their_producer_job(runs: Runs) -> None:
    kube = KubeApi(runs.api.api_client)
    quick = {KWOK_RUN_DURATION_ANNOTATION: "3s"}
    runs.create(
        run_manifest(
            "disaggregated",
            "split",
            trainer={"replicas": 2, "podAnnotations": quick},
            producers={"replicas": 2, "gpusPerReplica": 0, "podAnnotations": quick},
        )
    )
    succeeded = runs.wait_phase("split", "Succeeded", timeout=120)
    assert succeeded["status"]["trainerBackend"] == "jobset"
    assert JOBSET.workload(kube, runs.namespace, "split") is not None
    producers = kube.get("batch/v1", "Job", runs.namespace, "split-producers")
    assert producers is not None and producers["metadata"]["ownerReferences"][0]["kind"] == "SpecForgeRun"


def test_a_backend_the_cluster_lacks_is_named_and_the_run_starts_once_it_is_installed(
    runs: Runs, cluster: PrivateCluster
) -> None:
    kube = KubeApi(runs.api.api_client)
    runs.create(
        run_manifest(
            "dataflow_colocated", "wants-ptj", trainer={"backend": "pytorchjob", "podAnnotations": LONG_RUN}
        )
    )
    pending = wait_for(
        lambda: (
            (run := runs.get("wants-ptj"))
            and (c := condition(run, "TrainerBackendAvailable"))
            and c["status"] == "False"
            and run
        ),
        "TrainerBackendAvailable=False",
        timeout=60,
    )
    missing = condition(pending, "TrainerBackendAvailable")
    assert missing["reason"] == "TrainerBackendNotInstalled"
    assert "PyTorchJob" in missing["message"] and "training-operator" in missing["message"], missing
    assert pending["status"]["phase"] == "Pending"
    assert (
        runs.warning_reasons("wants-ptj", "TrainerBackendNotInstalled").count("TrainerBackendNotInstalled")
        == 1
    )

    bin_dir = Path(
        subprocess.check_output([str(HACK_DIR / "build-binaries.sh"), "--print-bin-dir"], text=True).strip()
    )
    crd = bin_dir.parent / "manifests" / "kubeflow.org_pytorchjobs.yaml"  # what hack/cluster.sh would install
    subprocess.run(
        [
            str(bin_dir / "kubectl"),
            "--kubeconfig",
            cluster.kubeconfig,
            "apply",
            "--server-side",
            "-f",
            str(crd),
        ],
        check=True,
        capture_output=True,
    )
    # Within the operator's discovery cache lifetime (30 s) plus a resync.
    job = wait_for(
        lambda: PYTORCHJOB.workload(kube, runs.namespace, "wants-ptj"), "the PyTorchJob", timeout=90
    )
    assert job["metadata"]["ownerReferences"][0]["name"] == "wants-ptj"
    served = wait_for(
        lambda: (
            (c := condition(runs.get("wants-ptj"), "TrainerBackendAvailable")) and c["status"] == "True" and c
        ),
        "TrainerBackendAvailable=True",
    )
    assert served["reason"] == "TrainerBackendServed"
    assert runs.get("wants-ptj")["status"]["trainerBackend"] == "pytorchjob"


def test_jobsets_go_through_jobsets_own_admission_webhooks(runs: Runs) -> None:
    """hack/lib/jobset.sh serves JobSet's webhooks with certificates it issued: a JobSet whose Job names
    would pass 63 characters is refused by JobSet's validating webhook (the CRD schema allows it)."""
    kube = KubeApi(runs.api.api_client)
    too_long = "j" * 60
    jobset = {
        "apiVersion": JOBSET.api_version,
        "kind": JOBSET.kind,
        "metadata": {"name": too_long, "namespace": runs.namespace},
        "spec": {
            "replicatedJobs": [
                {
                    "name": "node",
                    "template": {
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "c", "image": "busybox"}],
                                }
                            }
                        }
                    },
                }
            ]
        },
    }
    with pytest.raises(ApiException) as refused:
        kube.create(jobset)
    assert refused.value.status in (400, 403, 422)
    assert "vjobset.kb.io" in str(refused.value.body) and "too long" in str(refused.value.body)
