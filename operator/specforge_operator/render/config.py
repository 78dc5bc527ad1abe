"""The per-run ConfigMap (the run manifest the trainer reads) and the narrow RBAC for progress reports.

Rank 0 of the trainer patches ``status.progress`` itself; its ServiceAccount may only get and patch the
status of this one run, so a compromised trainer cannot touch anything else.
"""

from __future__ import annotations

from typing import Any

import yaml
from specforge_api.run import GROUP, PLURAL, SpecForgeRun

from specforge_operator.render.meta import TRAINER_COMPONENT, ChildNames, object_meta

RUN_CONFIG_KEY = "run.yaml"


def run_config_map(run: SpecForgeRun) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(run, ChildNames(run.name).config, TRAINER_COMPONENT),
        "data": {RUN_CONFIG_KEY: yaml.safe_dump(run.spec_manifest(), sort_keys=False)},
    }


def progress_rbac(run: SpecForgeRun) -> list[dict[str, Any]]:
    """A Role allowing get/patch on this run's status, bound to the trainer pods' ServiceAccount: the
    trainer pool's own (``serviceAccountName``) or, without one, a ServiceAccount the run creates."""
    names = ChildNames(run.name)
    account = run.spec.trainer.service_account_name
    created = []
    if account is None:
        account = names.trainer
        created.append(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": object_meta(run, names.trainer, TRAINER_COMPONENT),
                "automountServiceAccountToken": True,
            }
        )
    return [
        *created,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": object_meta(run, names.progress_role, TRAINER_COMPONENT),
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": [f"{PLURAL}/status"],
                    "resourceNames": [run.name],
                    "verbs": ["get", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": object_meta(run, names.progress_role, TRAINER_COMPONENT),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.progress_role},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": run.namespace}],
        },
    ]
