"""The pod contract's names are spelled once, in specforge_api: the trainer reads its environment through
``PodEnv`` and neither side re-types the API's group, version or plural."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from specforge_api.pod_contract import Env, PodEnv, Tunables
from specforge_api.run import GROUP, PLURAL, VERSION

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTRACT_NAMES = {
    value for holder in (Env, Tunables) for name, value in vars(holder).items() if name.isupper()
}
API_NAMES = {GROUP, VERSION, PLURAL, f"{GROUP}/{VERSION}"}


def _string_literals(package: Path) -> list[tuple[str, int, str]]:
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((str(path.relative_to(REPO_ROOT)), node.lineno, node.value))
    return found


@pytest.mark.parametrize("package", ["trainer/specforge_trainer", "operator/specforge_operator"])
def test_no_contract_env_name_or_api_name_is_spelled_outside_the_api(package: str) -> None:
    spelled = [
        f"{path}:{line}: {value!r}"
        for path, line, value in _string_literals(REPO_ROOT / package)
        if value in CONTRACT_NAMES | API_NAMES
        or (package.startswith("trainer") and value.startswith("SPECFORGE_"))
    ]
    assert not spelled, "use specforge_api's names (pod_contract.Env/Tunables, run.GROUP...):\n" + "\n".join(
        spelled
    )


def test_pod_env_reads_every_contract_variable_typed() -> None:
    env = PodEnv.from_environ(
        {
            Env.RUN_NAME: "demo",
            Env.RUN_UID: "u1",
            Env.DEPLOYMENT_MODE: "disaggregated",
            Env.MAX_UNACKED_REFS: "8",
            Env.STORE_WAIT_S: "2.5",
            Env.WORLD_SIZE: "4",
            Env.LOCAL_RANK: "1",
            Env.METADATA_URL: "",  # empty is unset
        }
    )
    assert (env.run_name, env.run_uid, env.deployment_mode.value) == ("demo", "u1", "disaggregated")
    assert (env.max_unacked_refs, env.store_wait_s, env.world_size, env.local_rank) == (8, 2.5, 4, 1)
    assert env.metadata_url is None and env.rank == 0
    with pytest.raises(ValueError, match=r"\$WORLD_SIZE must be a number"):
        PodEnv.from_environ({Env.WORLD_SIZE: "two"})
