"""Shared building blocks of the SpecForgeRun API models.

Every model speaks camelCase on the wire (YAML, the Kubernetes API) and snake_case in Python, and forbids
unknown fields so a typo fails loudly. A cross-field constraint is written once, as a :class:`CrossFieldRule`
carrying both its CEL expression (emitted into the CRD, so the API server enforces it) and the equivalent
Python predicate (so ``specforge run`` and the operator enforce it without a cluster); keeping the two forms
side by side is what stops them from drifting apart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.alias_generators import to_camel


@dataclass(frozen=True)
class CrossFieldRule:
    """One constraint over several fields of a model, in CEL and in Python."""

    cel: str
    message: str
    holds: Callable[[Any], bool]
    # The camelCase field the message is about, so errors name it (CEL ``fieldPath`` and pydantic's loc).
    field: str | None = None

    def as_crd_validation(self) -> dict[str, str]:
        rule = {"rule": self.cel, "message": self.message}
        if self.field is not None:
            rule["fieldPath"] = f".{self.field}"
        return rule


class ApiModel(BaseModel):
    """Base of every API object: camelCase aliases, unknown fields rejected, cross-field rules checked."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    cross_field_rules: ClassVar[tuple[CrossFieldRule, ...]] = ()

    @model_validator(mode="after")
    def _check_cross_field_rules(self) -> Self:
        broken = [rule for rule in self.cross_field_rules if not rule.holds(self)]
        if broken:
            raise ValueError("; ".join(_describe(rule) for rule in broken))
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        # Emit the CEL half of each cross-field rule into the schema the CRD is generated from.
        json_schema = handler(core_schema)
        if cls.cross_field_rules:
            target = handler.resolve_ref_schema(json_schema)
            target["x-kubernetes-validations"] = [rule.as_crd_validation() for rule in cls.cross_field_rules]
        return json_schema

    def to_wire(self) -> dict[str, Any]:
        """The object as the Kubernetes API sees it: camelCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _describe(rule: CrossFieldRule) -> str:
    return f"{rule.field}: {rule.message}" if rule.field else rule.message


def exactly_one_set(*values: object) -> bool:
    return sum(value is not None for value in values) == 1


def cel_exactly_one_set(*fields: str) -> str:
    """CEL for "exactly one of these optional fields is present"."""
    return " + ".join(f"(has(self.{field}) ? 1 : 0)" for field in fields) + " == 1"


def exactly_one_of(*fields: str) -> CrossFieldRule:
    """The rule "exactly one of these optional fields is set", fields named as on the wire (camelCase)."""
    attributes = [re.sub(r"(?<!^)(?=[A-Z])", "_", field).lower() for field in fields]
    listed = ", ".join(fields[:-1]) + f" or {fields[-1]}"
    return CrossFieldRule(
        cel=cel_exactly_one_set(*fields),
        message=f"exactly one of {listed} must be set",
        holds=lambda model: exactly_one_set(*(getattr(model, attribute) for attribute in attributes)),
    )
