"""A pool's and the managed store's overrides reach the pods the operator renders, after the operator's
own entries, and what would break the pod contract is refused before anything is rendered."""

from __future__ import annotations

from typing import Any

import pytest
from specforge_api.manifest import ManifestError
from specforge_api.pod_contract import RESERVED_ENV_NAMES, Env
from specforge_operator.plan import child_key, plan_children
from specforge_operator.render.config import progress_rbac
from specforge_operator.render.meta import labels
from specforge_operator.render.store import managed_redis_manifests, store_connection
from unit.operator.builders import build_run

HF_TOKEN = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "gpu", "operator": "In", "values": ["h100"]}]}
            ]
        }
    }
}
OVERRIDES: dict[str, Any] = {
    "env": [HF_TOKEN, {"name": "NCCL_DEBUG", "value": "INFO"}],
    "envFrom": [{"configMapRef": {"name": "nccl-settings"}, "prefix": "X_"}],
    "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}],
    "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}],
    "affinity": AFFINITY,
    "podLabels": {"team": "search"},
    "podAnnotations": {"example.com/owner": "search"},
    "serviceAccountName": "trainer-identity",
    "runtimeClassName": "nvidia",
    "securityContext": {
        "runAsUser": 2000,
        "runAsGroup": 2000,
        "fsGroup": 3000,
        "readOnlyRootFilesystem": True,
    },
}


def _pod_template(plan_manifest: dict[str, Any]) -> dict[str, Any]:
    spec = plan_manifest["spec"]
    if "pytorchReplicaSpecs" in spec:
        return spec["pytorchReplicaSpecs"]["Master"]["template"]
    return spec["template"]


def _trainer_template(**spec: Any) -> dict[str, Any]:
    run = build_run("local_colocated", **spec)
    plan = plan_children(run, finished=False)
    trainer = next(m for m in plan.to_apply if child_key(m) == plan.trainer_key)
    return _pod_template(trainer)


def test_trainer_overrides_follow_the_operators_own_entries() -> None:
    template = _trainer_template(
        trainer={**OVERRIDES, "acceleratorResource": "amd.com/gpu", "gpusPerReplica": 1}
    )
    pod = template["spec"]
    container = pod["containers"][0]
    names = [variable["name"] for variable in container["env"]]
    assert names[-2:] == ["HF_TOKEN", "NCCL_DEBUG"] and Env.RUN_NAME in names[:-2]
    assert container["env"][-2] == HF_TOKEN
    assert container["envFrom"] == [{"prefix": "X_", "configMapRef": {"name": "nccl-settings"}}]
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}} in pod[
        "volumes"
    ]
    assert pod["affinity"] == AFFINITY
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["serviceAccountName"] == "trainer-identity" and pod["automountServiceAccountToken"] is True
    assert template["metadata"]["labels"]["team"] == "search"
    assert template["metadata"]["annotations"] == {"example.com/owner": "search"}
    assert container["resources"]["limits"]["amd.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert pod["securityContext"]["fsGroup"] == 3000
    context = container["securityContext"]
    assert context["runAsUser"] == 2000 and context["readOnlyRootFilesystem"] is True
    # The hardening stays whatever the overrides say.
    assert context["runAsNonRoot"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}


def test_operator_labels_win_over_pod_labels_of_the_same_key() -> None:
    run = build_run("local_colocated")
    template = _trainer_template()
    assert template["metadata"]["labels"] == labels(run, "trainer")


def test_trainer_and_producer_pods_get_a_memory_backed_dev_shm_sized_by_the_pool() -> None:
    run = build_run("disaggregated", producers={"replicas": 1, "sharedMemorySize": "8Gi"})
    plan = plan_children(run, finished=False)
    sizes = {}
    for manifest in plan.rendered:
        if manifest["kind"] not in ("Job", "PyTorchJob"):
            continue
        pod = _pod_template(manifest)["spec"]
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["containers"][0]["volumeMounts"]
        sizes[manifest["kind"]] = shm["emptyDir"]
    assert sizes == {
        "PyTorchJob": {"medium": "Memory", "sizeLimit": "1Gi"},
        "Job": {"medium": "Memory", "sizeLimit": "8Gi"},
    }


def test_the_progress_role_is_bound_to_the_trainers_own_service_account_when_it_has_one() -> None:
    own = progress_rbac(build_run("local_colocated", trainer={"serviceAccountName": "trainer-identity"}))
    assert [m["kind"] for m in own] == ["Role", "RoleBinding"]
    assert own[1]["subjects"][0]["name"] == "trainer-identity"
    default = progress_rbac(build_run("local_colocated"))
    assert [m["kind"] for m in default] == ["ServiceAccount", "Role", "RoleBinding"]
    assert default[2]["subjects"][0]["name"] == "demo-trainer"


def _redis_deployment(managed: dict[str, Any], **spec: Any) -> dict[str, Any]:
    run = build_run("dataflow_colocated", metadataStore={"managed": managed}, **spec)
    connection = store_connection(run)
    assert connection is not None and connection.managed is not None
    manifests = managed_redis_manifests(run, connection.managed, released=False)
    return next(m for m in manifests if m["kind"] == "Deployment")


def test_store_overrides_reach_the_redis_pod() -> None:
    deployment = _redis_deployment(
        {**OVERRIDES, "nodeSelector": {"pool": "cpu"}, "tolerations": [{"key": "cpu", "operator": "Exists"}]},
        trainer={"nodeSelector": {"pool": "gpu"}},
        imagePullSecrets=[{"name": "mirror"}],
    )
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["env"] == OVERRIDES["env"]
    assert pod["nodeSelector"] == {"pool": "cpu"}, "the store's own placement replaces the trainer's"
    assert pod["tolerations"] == [{"key": "cpu", "operator": "Exists"}]
    assert pod["imagePullSecrets"] == [{"name": "mirror"}]
    assert pod["affinity"] == AFFINITY and pod["runtimeClassName"] == "nvidia"
    assert container["securityContext"]["runAsUser"] == 2000
    assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "search"


def test_store_without_placement_of_its_own_runs_where_the_trainer_may() -> None:
    tolerations = [{"key": "gpu", "operator": "Exists"}]
    deployment = _redis_deployment({}, trainer={"nodeSelector": {"pool": "gpu"}, "tolerations": tolerations})
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"} and pod["tolerations"] == tolerations
    assert pod["containers"][0]["securityContext"]["runAsUser"] == 999


def test_store_password_is_read_from_a_mounted_config_file_never_from_argv() -> None:
    deployment = _redis_deployment({})
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    argv = " ".join(container["command"] + container["args"])
    assert "requirepass" not in argv and "PASSWORD" not in argv
    assert container["args"][0] == "/etc/redis-auth/redis.conf"
    assert "env" not in container
    auth = next(v for v in pod["volumes"] if v["name"] == "redis-auth")
    assert auth["secret"]["secretName"] == "demo-redis-auth"


def test_managed_store_is_scaled_to_zero_once_the_run_has_finished_and_keeps_its_claim() -> None:
    run = build_run("dataflow_colocated", metadataStore={"managed": {"persistence": {"enabled": True}}})
    finished = plan_children(run, finished=True)
    running = plan_children(run, finished=False)
    for plan, replicas in ((running, 1), (finished, 0)):
        deployment = next(m for m in plan.to_apply if m["kind"] == "Deployment")
        assert deployment["spec"]["replicas"] == replicas
        assert ("v1", "PersistentVolumeClaim", "demo-redis-data") in {child_key(m) for m in plan.to_apply}


def test_managed_store_keeps_its_replica_while_a_producer_still_runs_after_the_run_finished() -> None:
    # A replacement producer finishing after the trainers did still commits through the store.
    run = build_run("disaggregated")
    plan = plan_children(run, finished=True, producers_active=True)
    deployment = next(m for m in plan.to_apply if m["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert "Job" not in {m["kind"] for m in plan.rendered}


def test_managed_store_kept_after_the_run_when_asked() -> None:
    run = build_run("dataflow_colocated", metadataStore={"managed": {"keepAfterRun": True}})
    plan = plan_children(run, finished=True)
    deployment = next(m for m in plan.to_apply if m["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1


def test_managed_store_admits_only_the_runs_own_pods() -> None:
    run = build_run("dataflow_colocated")
    policy = next(m for m in plan_children(run, finished=False).to_apply if m["kind"] == "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"] == {
        "specforge.io/run": "demo",
        "app.kubernetes.io/component": "metadata-store",
    }
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"specforge.io/run": "demo"}}}],
            "ports": [{"port": 6379, "protocol": "TCP"}],
        }
    ]


@pytest.mark.parametrize(
    ("pool", "field"),
    [({"env": [{"name": name, "value": "x"}]}, "env") for name in sorted(RESERVED_ENV_NAMES)]
    + [
        ({"volumes": [{"name": "dshm", "emptyDir": {}}]}, "volumes"),
        (
            {
                "volumes": [{"name": "x", "emptyDir": {}}],
                "volumeMounts": [{"name": "x", "mountPath": "/dev/shm"}],
            },
            "volumeMounts",
        ),
        (
            {
                "volumes": [{"name": "x", "emptyDir": {}}],
                "volumeMounts": [{"name": "x", "mountPath": "/features"}],
            },
            "volumeMounts",
        ),
        ({"volumeMounts": [{"name": "x", "mountPath": "/x"}]}, "volumeMounts"),
        ({"podLabels": {"app.kubernetes.io/component": "x"}}, "podLabels"),
        ({"affinity": {"nodeAfinity": {}}}, "affinity"),
        ({"securityContext": {"runAsUser": 0}}, "runAsUser"),
        ({"securityContext": {"privileged": True}}, "privileged"),
        ({"command": ["sh"]}, "command"),
    ],
)
def test_overrides_that_break_the_pod_contract_are_refused_naming_the_field(
    pool: dict[str, Any], field: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        build_run("local_colocated", trainer=pool)
    assert field in str(caught.value)
