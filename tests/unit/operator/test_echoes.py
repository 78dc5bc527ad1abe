"""Child events the operator caused itself are not reconciled again; everyone else's are."""

from __future__ import annotations

import pytest
from specforge_operator.echoes import is_own_echo


def child(*writers: tuple[str, str]) -> dict:
    return {"metadata": {"managedFields": [{"manager": manager, "time": time} for manager, time in writers]}}


OURS = "specforge-operator"
CASES = [
    ("ADDED", child((OURS, "2026-01-01T00:00:01Z")), True),
    (
        "MODIFIED",
        child((OURS, "2026-01-01T00:00:01Z"), ("kube-controller-manager", "2026-01-01T00:00:05Z")),
        False,
    ),
    (
        "MODIFIED",
        child(("kube-controller-manager", "2026-01-01T00:00:01Z"), (OURS, "2026-01-01T00:00:05Z")),
        True,
    ),
    ("MODIFIED", child((OURS, "2026-01-01T00:00:05Z"), ("kubectl-edit", "2026-01-01T00:00:05Z")), False),
    ("DELETED", child((OURS, "2026-01-01T00:00:01Z")), False),
    (None, {"metadata": {}}, False),
]


@pytest.mark.parametrize(("event_type", "body", "echo"), CASES)
def test_echo_table(event_type: str | None, body: dict, echo: bool) -> None:
    assert is_own_echo(event_type, body) is echo
