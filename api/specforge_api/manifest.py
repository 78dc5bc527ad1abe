"""Reading run manifests with errors a person can act on.

Both the trainer CLI (a file on disk) and the operator (an object from the API server) go through here, so
a bad manifest is rejected with the same message everywhere: one line per problem, naming the camelCase
field path and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from specforge_api.run import SpecForgeRun


class ManifestError(ValueError):
    """A run manifest that cannot be used; ``problems`` holds ``(field path, reason)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {reason}" for path, reason in problems)
        super().__init__(f"invalid SpecForgeRun manifest {source}:\n{lines}")


def parse_run_manifest(document: Mapping[str, Any], source: str = "<object>") -> SpecForgeRun:
    """Validate one already-parsed manifest (a mapping) into a :class:`SpecForgeRun`."""
    if not isinstance(document, Mapping):
        raise ManifestError(source, [("<root>", f"expected a mapping, got {type(document).__name__}")])
    try:
        return SpecForgeRun.model_validate(dict(document))
    except ValidationError as error:
        raise ManifestError(source, [_problem(detail) for detail in error.errors()]) from None


def load_run_manifest(path: str | Path) -> SpecForgeRun:
    """Read and validate a single-document SpecForgeRun YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ManifestError(str(path), [("<file>", error.strerror or str(error))]) from None
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise ManifestError(str(path), [("<yaml>", str(error))]) from None
    if len(documents) != 1:
        raise ManifestError(
            str(path), [("<file>", f"expected exactly one YAML document, found {len(documents)}")]
        )
    return parse_run_manifest(documents[0], source=str(path))


def _problem(detail: Mapping[str, Any]) -> tuple[str, str]:
    location = [str(part) for part in detail["loc"]]
    message = str(detail["msg"])
    # Cross-field rules report "field: reason" from the model they belong to; fold the field into the path.
    if detail["type"] == "value_error":
        message = message.removeprefix("Value error, ")
        field, sep, reason = message.partition(": ")
        if sep and " " not in field:
            location.append(field)
            message = reason
    return ".".join(location) or "<root>", message
