"""The operator's counters come back from its own annotation, not from a status the trainer may patch."""

from __future__ import annotations

import json

from specforge_operator.status.ledger import GUARDED_FIELDS, ledger_entry, trusted_status

WRITTEN = {
    "phase": "Restarting",
    "restarts": 1,
    "lastFailedWorkloadUid": "w1",
    "startTime": "2026-01-01T12:00:00Z",
    "conditions": [],
    "progress": {"step": 40},
}


def test_the_entry_keeps_only_the_guarded_fields() -> None:
    entry = json.loads(ledger_entry(WRITTEN))
    assert entry == {key: WRITTEN[key] for key in GUARDED_FIELDS if key in WRITTEN}
    assert ledger_entry(WRITTEN) == ledger_entry(dict(reversed(list(WRITTEN.items()))))  # stable


def test_a_forged_status_gets_the_recorded_counters_back_and_keeps_the_trainers_fields() -> None:
    forged = {**WRITTEN, "restarts": 0, "phase": "Running", "progress": {"step": 50}}
    del forged["startTime"]
    trusted = trusted_status(forged, ledger_entry(WRITTEN))
    assert (trusted["restarts"], trusted["phase"], trusted["startTime"]) == (
        1,
        "Restarting",
        WRITTEN["startTime"],
    )
    assert trusted["progress"] == {"step": 50}  # the trainer's own field, as it wrote it


def test_a_guarded_field_the_operator_never_wrote_is_dropped_from_a_forged_status() -> None:
    trusted = trusted_status({**WRITTEN, "completionTime": "2026-01-01T13:00:00Z"}, ledger_entry(WRITTEN))
    assert "completionTime" not in trusted


def test_without_an_entry_the_status_is_all_there_is() -> None:
    assert trusted_status(WRITTEN, None) == WRITTEN
    assert trusted_status(WRITTEN, "not json") == WRITTEN
