"""The generated spec reference: every spec field of the models appears with its type, default and bounds,
every CEL rule's message is listed, and ``--check`` fails on a stale file."""

from __future__ import annotations

from pathlib import Path

from specforge_api.spec import SpecForgeRunSpec
from specforge_operator.spec_reference import main, render_reference


def _row(reference: str, path: str) -> list[str]:
    """The cells of ``path``'s row in a field table (the rules table has two columns, fields six)."""
    rows = [
        line.strip("|").split(" | ") for line in reference.splitlines() if line.startswith(f"| `{path}` |")
    ]
    (row,) = [row for row in rows if len(row) == 6]
    return [cell.strip() for cell in row]


def test_every_top_level_spec_field_is_documented() -> None:
    reference = render_reference()
    for field in SpecForgeRunSpec.model_fields.values():
        assert f"| `spec.{field.alias}` |" in reference, field.alias


def test_rows_carry_type_default_bounds_and_description() -> None:
    reference = render_reference()
    _path, kind, required, default, constraints, description = _row(reference, "spec.training.learningRate")
    assert (kind, required, default) == ("number", "", "`0.001`")
    assert constraints.startswith("> 0")  # exclusive minimum
    assert description
    assert _row(reference, "spec.deploymentMode")[2] == "yes"


def test_cel_rule_messages_are_listed() -> None:
    assert "| `spec.deploymentMode` | deploymentMode is immutable |" in render_reference()


def test_check_fails_on_a_stale_file_and_passes_on_a_fresh_one(tmp_path: Path) -> None:
    target = tmp_path / "spec-reference.md"
    assert main(["--check", str(target)]) == 1
    assert main(["--output", str(target)]) == 0
    assert main(["--check", str(target)]) == 0
    target.write_text(target.read_text() + "edited by hand\n")
    assert main(["--check", str(target)]) == 1
