"""Readable, diff-friendly YAML for generated files: no anchors or aliases, multi-line strings as blocks."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


class _ReadableDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ReadableDumper.add_representer(str, _represent_str)


def dump_yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_ReadableDumper, sort_keys=False, width=120)


def dump_yaml_all(documents: Iterable[Any]) -> str:
    return yaml.dump_all(documents, Dumper=_ReadableDumper, sort_keys=False, width=120)
