"""The Helm chart on the real control plane, and its RBAC proven rather than guessed.

``helm install`` puts the chart in a namespace enforcing the ``restricted`` Pod Security Standard,
limited to two watched namespaces. The operator then runs out of cluster (``python -m specforge_operator``
with peering, as the chart's Deployment runs it) under the chart's ServiceAccount, authenticated by a
token from the TokenRequest API, so every request it makes is authorized by the chart's Role and nothing
else. Every example runs to success under that identity; actions outside the role are denied; the
rendered chart also passes the API server's own server-side dry-run.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from _support.operator_process import OperatorProcess
from e2e.conftest import (
    KWOK_FAIL_ANNOTATION,
    KWOK_NODE_SELECTOR,
    KWOK_RUN_DURATION_ANNOTATION,
    KWOK_TOLERATIONS,
    LONG_RUN,
)
from e2e.operator_harness import wait_for_resyncs
from e2e.specforgerun import conftest as specforgerun_fixtures
from e2e.specforgerun import test_lifecycle as lifecycle
from e2e.specforgerun.conftest import EXAMPLES, Runs, condition, load_example, wait_for
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from specforge_operator.kube import KubeApi
from unit.operator.builders import run_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "specforge-operator"
MODELS_PVC_EXAMPLE = REPO_ROOT / "examples" / "models-pvc.yaml"
DAY_ONE_EXAMPLE = REPO_ROOT / "examples" / "hf-token-and-model-pvc.yaml"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
# The SpecForgeRun CRD, installed by the session (a fixture of tests/e2e/specforgerun, used here too).
crd_installed = specforgerun_fixtures.crd_installed


@dataclass(frozen=True)
class ChartInstall:
    release: str
    operator_namespace: str
    watched: tuple[str, str]
    outside: str
    service_account: str
    peering: str
    install_output: str
    operator_kubeconfig: Path
    operator: OperatorProcess


def run_tool(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    result = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def token_kubeconfig(admin_kubeconfig: str, token: str, path: Path) -> Path:
    """A kubeconfig for the same API server (and CA) that authenticates with ``token`` only."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "token", "user": {"token": token}}],
        "contexts": [{"name": "token", "context": {"cluster": cluster["name"], "user": "token"}}],
        "current-context": "token",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def request_token(core: k8s_client.CoreV1Api, namespace: str, service_account: str) -> str:
    """A short-lived token for ``service_account`` from the TokenRequest API (what kubelet mounts in pods)."""
    request = k8s_client.AuthenticationV1TokenRequest(
        spec=k8s_client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    return core.create_namespaced_service_account_token(service_account, namespace, request).status.token


def create_namespace(core: k8s_client.CoreV1Api, name: str, labels: dict[str, str] | None = None) -> None:
    core.create_namespace(k8s_client.V1Namespace(metadata=k8s_client.V1ObjectMeta(name=name, labels=labels)))


@pytest.fixture(scope="module")
def chart(
    kubeconfig: str,
    kube_api: k8s_client.ApiClient,
    cluster_bin_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    crd_installed: str,
) -> Iterator[ChartInstall]:
    core = k8s_client.CoreV1Api(kube_api)
    suffix = uuid.uuid4().hex[:6]
    release, ops = f"sfo-{suffix}", f"chart-ops-{suffix}"
    watched = (f"chart-a-{suffix}", f"chart-b-{suffix}")
    outside = f"chart-out-{suffix}"
    create_namespace(core, ops, {PSA_ENFORCE: "restricted"})
    for name in (*watched, outside):
        create_namespace(core, name)
    helm = str(cluster_bin_dir / "helm")
    operator = None
    try:
        install_output = run_tool(
            helm, "install", release, str(CHART_DIR), "--namespace", ops,
            "--set", f"watch.namespaces={{{','.join(watched)}}}",
            "--set", f"peering.name={release}",
            "--set", "resyncSeconds=3",
            # The session manages the CRD (crd_installed), as GitOps would: the release must not own it.
            "--set", "crds.enabled=false",
            # The chart's own operator pods are faked by KWOK; the test runs the operator out of cluster.
            "--set-json", f"tolerations={json.dumps(KWOK_TOLERATIONS)}",
            "--set-json", f"nodeSelector={json.dumps(KWOK_NODE_SELECTOR)}",
        )  # fmt: skip
        service_account = f"{release}-specforge-operator"
        work = tmp_path_factory.mktemp("chart-operator")
        operator_kubeconfig = token_kubeconfig(
            kubeconfig, request_token(core, ops, service_account), work / "kubeconfig.yaml"
        )
        # Exactly what the chart's container runs (see templates/deployment.yaml), from this checkout.
        scope = [*(f"--namespace={name}" for name in watched), f"--peering={release}"]
        operator = OperatorProcess(
            str(operator_kubeconfig), work / "operator.log", resync_seconds=3, scope_args=scope
        )
        operator.wait_live()
        yield ChartInstall(
            release,
            ops,
            watched,
            outside,
            service_account,
            release,
            install_output,
            operator_kubeconfig,
            operator,
        )
    finally:
        if operator is not None:
            operator.stop()
        subprocess.run(
            [helm, "uninstall", release, "--namespace", ops, "--wait"], capture_output=True, timeout=120
        )
        for name in (ops, *watched, outside):
            core.delete_namespace(name)


@pytest.fixture(scope="module")
def operator_api(chart: ChartInstall) -> Iterator[k8s_client.ApiClient]:
    """An API client with the operator's identity: the chart's ServiceAccount token."""
    api = k8s_config.new_client_from_config(config_file=str(chart.operator_kubeconfig))
    try:
        yield api
    finally:
        api.close()


def forbidden(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as error:
        if error.status == 403:
            return True
        raise
    return False


def missing(call: Callable[[], Any]) -> None:
    """Run ``call``, taking a 404 (allowed, but nothing there) as success."""
    try:
        call()
    except ApiException as error:
        if error.status != 404:
            raise


def test_install_tells_the_next_command_and_its_pods_pass_restricted_pod_security(
    chart: ChartInstall, kube_api: k8s_client.ApiClient
) -> None:
    notes = chart.install_output
    assert f"kubectl -n {chart.operator_namespace} rollout status deployment/{chart.release}" in notes
    assert f"kubectl get sfr -n {chart.watched[0]} -w" in notes
    assert f"only in: {', '.join(chart.watched)}" in notes
    apps = k8s_client.AppsV1Api(kube_api)
    # The namespace enforces "restricted": a pod the chart renders less hardened would never be created.
    deployment = wait_for(
        lambda: (
            (
                found := apps.read_namespaced_deployment(
                    f"{chart.release}-specforge-operator", chart.operator_namespace
                )
            )
            and (found.status.available_replicas or 0) == 2
            and found
        ),
        "the chart's operator Deployment to have 2 available replicas",
        timeout=60,
    )
    assert deployment.spec.template.spec.service_account_name == chart.service_account
    # ... and the namespace really enforces it: a pod without that hardening is refused.
    plain_pod = {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    with pytest.raises(ApiException, match="violates PodSecurity"):
        k8s_client.CoreV1Api(kube_api).create_namespaced_pod(chart.operator_namespace, plain_pod)


@pytest.mark.parametrize(
    "values",
    [["--set", "watch.namespaces={NS_A,NS_B}"], []],
    ids=["restricted-to-namespaces", "cluster-wide"],
)
def test_rendered_chart_passes_server_side_dry_run(
    values: list[str], chart: ChartInstall, cluster_bin_dir: Path, kubeconfig: str
) -> None:
    values = [value.replace("NS_A", chart.watched[0]).replace("NS_B", chart.watched[1]) for value in values]
    rendered = run_tool(
        str(cluster_bin_dir / "helm"), "template", f"dry-{chart.release}", str(CHART_DIR),
        "--namespace", chart.operator_namespace, "--include-crds", "--set", "peering.name=dry-run", *values,
    )  # fmt: skip
    applied = run_tool(
        str(cluster_bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "apply", "--dry-run=server",
        "--server-side", "--force-conflicts", "--field-manager=chart-e2e", "-f", "-",
        stdin=rendered,
    )  # fmt: skip
    kinds = {line.split("/", 1)[0] for line in applied.splitlines() if "serverside-applied" in line}
    expected = {
        "serviceaccount",
        "clusterrole.rbac.authorization.k8s.io",
        "deployment.apps",
        "service",
        "poddisruptionbudget.policy",
    }
    assert expected <= kinds, applied
    assert ("role.rbac.authorization.k8s.io" in kinds) == bool(values), applied


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_every_example_runs_under_the_charts_service_account(
    example: Path, chart: ChartInstall, kube_api: k8s_client.ApiClient, tmp_path: Path
) -> None:
    """The operator lifecycle e2e flow (exact children, Running, Succeeded, GC), with the chart's identity."""
    namespace = chart.watched[0]
    lifecycle.test_example_run_lifecycle(
        example, kube_api, KubeApi(kube_api), Runs(kube_api, namespace), namespace, chart.operator, tmp_path
    )
    # Other e2e modules' operator (admin, all namespaces) may be running in the same session; this one's
    # own successful reconciles are what prove the chart's RBAC suffices.
    assert handled_by_chart_operator(chart, namespace, load_example(example)["metadata"]["name"])


def handled_by_chart_operator(chart: ChartInstall, namespace: str, name: str) -> bool:
    """Whether the operator running as the chart's ServiceAccount reconciled this run successfully."""
    return f"[{namespace}/{name}] Handler 'run_changed' succeeded" in chart.operator.log_path.read_text()


def assert_hardened(template: dict[str, Any]) -> None:
    for container in template["spec"]["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["allowPrivilegeEscalation"] is False, context
        assert context["capabilities"] == {"drop": ["ALL"]}, context


def test_readme_apply_command_accepts_every_example(
    chart: ChartInstall, cluster_bin_dir: Path, kubeconfig: str
) -> None:
    """``kubectl apply -n <watched namespace> -f examples/<mode>.yaml``, as the README and NOTES say."""
    for example in EXAMPLES:
        applied = run_tool(
            str(cluster_bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "apply", "--dry-run=server",
            "-n", chart.watched[1], "-f", str(example),
        )  # fmt: skip
        assert "specforgerun.specforge.io/" in applied and "(server dry run)" in applied, applied


def test_failed_pod_reason_reaches_the_status(chart: ChartInstall, kube_api: k8s_client.ApiClient) -> None:
    """Needs the role's pods/list: the container's exit code comes from the failed pod."""
    runs = Runs(kube_api, chart.watched[1])
    annotations = {KWOK_FAIL_ANNOTATION: "true", KWOK_RUN_DURATION_ANNOTATION: "1s"}
    runs.create(
        run_manifest(
            "local_colocated",
            "failing",
            trainer={"podAnnotations": annotations},
            runPolicy={"backoffLimit": 0},
        )
    )
    failed = runs.wait_phase("failing", "Failed", timeout=90)
    reason = condition(failed, "Failed")
    assert reason["status"] == "True" and "exit code 1" in reason["message"], reason
    assert handled_by_chart_operator(chart, chart.watched[1], "failing")


def test_models_pvc_example_feeds_a_run(
    chart: ChartInstall, kube_api: k8s_client.ApiClient, cluster_bin_dir: Path, kubeconfig: str
) -> None:
    namespace = chart.watched[1]
    applied = run_tool(
        str(cluster_bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "apply", "-n", namespace,
        "-f", str(MODELS_PVC_EXAMPLE),
    )  # fmt: skip
    assert "persistentvolumeclaim/specforge-models created" in applied, applied
    assert "job.batch/specforge-fetch-target-model created" in applied, applied
    runs, kube = Runs(kube_api, namespace), KubeApi(kube_api)
    manifest = load_example(next(path for path in EXAMPLES if "dataflow" in path.stem))
    manifest["metadata"]["name"] = "real-model"
    manifest["spec"] = {
        **manifest["spec"],
        "metadataStore": {"managed": {}},  # no Redis volume: the test cluster has no provisioner
        "targetModel": {
            "path": "/models/llama-3.1-8b-instruct",
            "volume": {"persistentVolumeClaim": {"claimName": "specforge-models", "readOnly": True}},
        },
        "dataset": {
            "path": "/data/sharegpt.jsonl",
            "volume": {"persistentVolumeClaim": {"claimName": "specforge-datasets", "readOnly": True}},
        },
    }
    runs.create(manifest)
    job = wait_for(
        lambda: kube.get("kubeflow.org/v1", "PyTorchJob", namespace, "real-model-trainer"),
        "the trainer PyTorchJob (created once the run's Redis is ready)",
        timeout=60,
    )
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        assert_hardened(replica["template"])
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    claims = {
        volume["name"]: volume.get("persistentVolumeClaim", {}).get("claimName") for volume in pod["volumes"]
    }
    mounts = {
        mount["name"]: (mount["mountPath"], mount.get("readOnly"))
        for mount in pod["containers"][0]["volumeMounts"]
    }
    assert (claims["target-model"], mounts["target-model"]) == ("specforge-models", ("/models", True))
    assert (claims["dataset"], mounts["dataset"]) == ("specforge-datasets", ("/data", True))


def test_day_one_example_passes_an_hf_token_secret_and_a_model_claim_to_the_trainer(
    chart: ChartInstall, kube_api: k8s_client.ApiClient, cluster_bin_dir: Path, kubeconfig: str
) -> None:
    """README's day-one path: the HF-token Secret, the model claims, then examples/hf-token-and-model-pvc.yaml."""
    namespace = chart.watched[0]
    core = k8s_client.CoreV1Api(kube_api)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "hf-token"}, "stringData": {"token": "hf_x"}}
    )
    run_tool(
        str(cluster_bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "apply", "-n", namespace,
        "-f", str(MODELS_PVC_EXAMPLE),
    )  # fmt: skip
    config_map, run = yaml.safe_load_all(DAY_ONE_EXAMPLE.read_text())
    core.create_namespaced_config_map(namespace, config_map)
    run["spec"]["trainer"]["resources"] = {"cpu": "1", "memory": "4Gi"}  # KWOK nodes are small
    Runs(kube_api, namespace).create(run)
    kube = KubeApi(kube_api)
    job = wait_for(
        lambda: kube.get("kubeflow.org/v1", "PyTorchJob", namespace, "llama-draft-trainer"),
        "the trainer PyTorchJob (created once the run's Redis is ready)",
        timeout=120,
    )
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}},
    } in container["env"]
    assert container["envFrom"] == [{"configMapRef": {"name": "nccl-settings"}}]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["target-model"]["persistentVolumeClaim"] == {
        "claimName": "specforge-models",
        "readOnly": True,
    }
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert (mounts["target-model"], mounts["dshm"]) == ("/models", "/dev/shm")
    assert handled_by_chart_operator(chart, namespace, "llama-draft")


def test_the_operator_identity_is_denied_outside_its_role(
    chart: ChartInstall, operator_api: k8s_client.ApiClient
) -> None:
    core, batch = k8s_client.CoreV1Api(operator_api), k8s_client.BatchV1Api(operator_api)
    rbac = k8s_client.RbacAuthorizationV1Api(operator_api)
    inside, outside = chart.watched[0], chart.outside
    # Its one Secret per run (the store password) is read by name where it works ...
    assert not forbidden(lambda: missing(lambda: core.read_namespaced_secret("anything", inside)))
    # ... but Secrets are never listed, not even there, and nothing is read elsewhere.
    assert forbidden(lambda: core.list_namespaced_secret(inside))
    assert forbidden(lambda: core.list_namespaced_secret(outside))
    assert forbidden(lambda: core.read_namespaced_secret("anything", outside))
    assert forbidden(lambda: core.list_secret_for_all_namespaces())
    assert forbidden(lambda: batch.list_namespaced_job(outside))
    assert forbidden(lambda: core.list_namespaced_secret(chart.operator_namespace))
    assert forbidden(lambda: core.list_node())
    assert forbidden(lambda: core.delete_namespace(inside))
    # Not even inside its namespaces may it run arbitrary pods or touch what it does not manage.
    assert forbidden(
        lambda: core.create_namespaced_pod(
            inside, {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "x"}]}}
        )
    )
    assert forbidden(lambda: core.read_namespaced_pod_log("x", inside))
    assert forbidden(
        lambda: rbac.create_cluster_role_binding(
            {
                "metadata": {"name": "x"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [],
            }
        )
    )
    # RBAC's escalation check: a Role granting more than it holds is refused even where it may create Roles.
    greedy = {
        "metadata": {"name": "greedy"},
        "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}],
    }
    assert forbidden(lambda: rbac.create_namespaced_role(inside, greedy))


def test_runs_outside_the_watched_namespaces_are_left_alone(
    chart: ChartInstall, kube_api: k8s_client.ApiClient
) -> None:
    ignored, served = Runs(kube_api, chart.outside), Runs(kube_api, chart.watched[1])
    manifest = load_example(next(path for path in EXAMPLES if "dataflow" in path.stem))
    manifest["metadata"]["name"] = "elsewhere"
    ignored.create(manifest)
    served.create(manifest)
    wait_for(
        lambda: handled_by_chart_operator(chart, chart.watched[1], "elsewhere"), "the served run's reconcile"
    )
    # Two resyncs of the served run: the operator's one resync loop passed the ignored twin's namespace too.
    wait_for_resyncs(chart.operator, chart.watched[1], "elsewhere")
    assert not handled_by_chart_operator(chart, chart.outside, "elsewhere")
    assert f"[{chart.outside}/" not in chart.operator.log_path.read_text()


def test_the_trainer_service_account_may_only_report_its_own_progress(
    chart: ChartInstall, kube_api: k8s_client.ApiClient, kubeconfig: str, tmp_path: Path
) -> None:
    namespace = chart.watched[1]
    runs = Runs(kube_api, namespace)
    base = load_example(next(path for path in EXAMPLES if "dataflow" in path.stem))
    for name in ("reporter", "neighbour"):
        runs.create({**base, "metadata": {**base["metadata"], "name": name}})
    core = k8s_client.CoreV1Api(kube_api)
    wait_for(
        lambda: (
            core.list_namespaced_service_account(
                namespace, field_selector="metadata.name=reporter-trainer"
            ).items
        ),
        "the trainer ServiceAccount",
    )
    config = token_kubeconfig(
        kubeconfig, request_token(core, namespace, "reporter-trainer"), tmp_path / "trainer.yaml"
    )
    trainer_api = k8s_config.new_client_from_config(config_file=str(config))
    try:
        custom = k8s_client.CustomObjectsApi(trainer_api)
        group = ("specforge.io", "v1alpha1", namespace, "specforgeruns")
        progress = {"status": {"progress": {"step": 3, "loss": 1.5}}}
        # The operator applies the ServiceAccount, then its Role and RoleBinding: allowed once those exist.
        wait_for(
            lambda: (
                not forbidden(
                    lambda: custom.patch_namespaced_custom_object_status(*group, "reporter", progress)
                )
            ),
            "the trainer's progress RoleBinding to take effect",
            timeout=20,
        )
        assert runs.get("reporter")["status"]["progress"]["step"] == 3
        assert forbidden(lambda: custom.patch_namespaced_custom_object_status(*group, "neighbour", progress))
        assert forbidden(
            lambda: custom.patch_namespaced_custom_object(*group, "reporter", {"spec": {"suspend": True}})
        )
        assert forbidden(lambda: custom.list_namespaced_custom_object(*group))
        assert forbidden(lambda: k8s_client.CoreV1Api(trainer_api).list_namespaced_secret(namespace))
    finally:
        trainer_api.close()


def test_peering_is_live_and_the_operator_never_hit_a_permission_error(
    chart: ChartInstall, kube_api: k8s_client.ApiClient
) -> None:
    custom = k8s_client.CustomObjectsApi(kube_api)
    for namespace in chart.watched:
        peering = custom.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", chart.peering
        )
        assert peering.get("status"), f"no keep-alive from the operator in {namespace}'s KopfPeering"
    log = chart.operator.log_path.read_text()
    for marker in ("Forbidden", "forbidden", "Not enough permissions"):
        assert marker not in log, f"{marker!r} in the operator log:\n{chart.operator.log_tail()}"


def test_host_path_runs_are_refused_in_served_namespaces_naming_the_field(
    chart: ChartInstall, kube_api: k8s_client.ApiClient
) -> None:
    """The chart's ValidatingAdmissionPolicy (hostPathVolumes.allowed=false by default), bound to the
    namespaces it serves: a hostPath anywhere in a run is refused by the API server, naming the field."""
    runs = Runs(kube_api, chart.watched[0])
    host = {"hostPath": {"path": "/srv/models"}}
    cases = {
        "spec.featureStore.volume.hostPath": {"featureStore": {"volume": host}},
        "spec.trainer.volumes[].hostPath": {
            "trainer": {
                "volumes": [{"name": "models", **host}],
                "volumeMounts": [{"name": "models", "mountPath": "/m"}],
            }
        },
        "spec.metadataStore.managed.volumes[].hostPath": {
            "deploymentMode": "dataflow_colocated",
            "metadataStore": {"managed": {"volumes": [{"name": "x", **host}]}},
        },
    }
    for field, spec in cases.items():
        with pytest.raises(ApiException) as caught:
            runs.create(run_manifest(spec.pop("deploymentMode", "local_colocated"), "host-path", **spec))
        assert caught.value.status in (403, 422) and field in caught.value.body, caught.value.body
    # The same run outside the namespaces it serves is not the chart's business.
    Runs(kube_api, chart.outside).create(
        run_manifest("local_colocated", "host-path", featureStore={"volume": host})
    )
    # A run without hostPath is accepted, and so are the operator's later metadata patches of it.
    runs.create(run_manifest("local_colocated", "no-host-path"))


def test_namespace_editors_may_run_training_and_viewers_only_watch(
    chart: ChartInstall, kube_api: k8s_client.ApiClient
) -> None:
    """The chart's user roles are aggregated into the built-in edit and view ClusterRoles."""
    namespace = chart.watched[1]
    rbac, authz = k8s_client.RbacAuthorizationV1Api(kube_api), k8s_client.AuthorizationV1Api(kube_api)
    for user, role in (("alice", "edit"), ("bob", "view")):
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": f"{user}-{role}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
            },
        )

    def allowed(user: str, verb: str, subresource: str = "") -> bool:
        review = authz.create_subject_access_review(
            {
                "spec": {
                    "user": user,
                    "resourceAttributes": {
                        "namespace": namespace,
                        "group": "specforge.io",
                        "resource": "specforgeruns",
                        "subresource": subresource,
                        "verb": verb,
                    },
                }
            }
        )
        return bool(review.status.allowed)

    # The aggregation controller folds the chart's roles into edit/view shortly after install.
    wait_for(lambda: allowed("alice", "create") and allowed("bob", "watch"), "edit and view to cover runs")
    assert allowed("alice", "delete") and allowed("alice", "patch")
    assert not allowed("alice", "patch", "status"), "status belongs to the operator and the trainer"
    assert allowed("bob", "get") and allowed("bob", "list") and allowed("bob", "get", "status")
    assert not allowed("bob", "create") and not allowed("bob", "delete")


def test_every_run_policy_works_under_the_charts_service_account(
    chart: ChartInstall, kube_api: k8s_client.ApiClient
) -> None:
    """Suspend, gang restart, queue and TTL, each carried out by the operator as the chart's identity:
    the operator log shows its reconciles and no permission error (see the peering test above)."""
    namespace = chart.watched[1]
    runs, kube = Runs(kube_api, namespace), KubeApi(kube_api)
    # Suspend: the workload is suspended (patch), the run Suspended.
    runs.create(run_manifest("dataflow_colocated", "pausing", trainer={"podAnnotations": LONG_RUN}))
    runs.wait_phase("pausing", "Running", timeout=90)
    runs.patch_spec("pausing", {"suspend": True})
    runs.wait_phase("pausing", "Suspended", timeout=60)
    # Gang restart: a failed rank deletes the whole workload (foreground) and recreates it, past the limit Failed.
    failing = {KWOK_FAIL_ANNOTATION: "true", KWOK_RUN_DURATION_ANNOTATION: "2s"}
    runs.create(
        run_manifest(
            "dataflow_colocated",
            "crashing",
            trainer={"podAnnotations": failing},
            runPolicy={"backoffLimit": 1},
        )
    )
    failed = runs.wait_phase("crashing", "Failed", timeout=180)
    assert condition(failed, "Failed")["reason"] == "BackoffLimitExceeded", failed["status"]
    assert failed["status"]["restarts"] == 1
    # Queue: created suspended for the queue to admit, QueueAdmitted=False.
    runs.create(run_manifest("local_colocated", "queued", scheduling={"queueName": "team-a"}))
    queued = wait_for(
        lambda: (found := condition(runs.get("queued"), "QueueAdmitted")) and found["status"] == "False",
        "QueueAdmitted=False",
        timeout=60,
    )
    assert queued
    assert kube.get("batch/v1", "Job", namespace, "queued-trainer")["spec"]["suspend"] is True
    # TTL: the finished run is deleted by the operator.
    quick = {KWOK_RUN_DURATION_ANNOTATION: "1s"}
    runs.create(
        run_manifest(
            "local_colocated",
            "short-lived",
            trainer={"podAnnotations": quick},
            runPolicy={"ttlSecondsAfterFinished": 0},
        )
    )

    def deleted() -> bool:
        try:
            runs.get("short-lived")
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    wait_for(deleted, "the TTL to delete the finished run", timeout=120)
    for name in ("pausing", "crashing", "queued", "short-lived"):
        assert handled_by_chart_operator(chart, namespace, name), name
    log = chart.operator.log_path.read_text()
    assert "Forbidden" not in log and "forbidden" not in log, chart.operator.log_tail()
