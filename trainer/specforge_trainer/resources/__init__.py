"""Data shipped inside the package: the ``chat-mini`` dataset and the tokenizer the built-in target uses.

Shipping them as package data (not repo-relative files) means a pip install and the trainer image
can run the demo with no download. ``generate.py`` rebuilds both from a fixed seed.
"""

from __future__ import annotations

from pathlib import Path

_RESOURCES_DIR = Path(__file__).parent
BUILTIN_DATASETS = {"chat-mini": _RESOURCES_DIR / "chat_mini.jsonl"}
BUILTIN_TOKENIZER_DIR = _RESOURCES_DIR / "chat_mini_tokenizer"


def builtin_dataset_path(name: str) -> Path:
    """The bundled JSONL file for a built-in dataset name; a clear error names the known ones."""
    try:
        return BUILTIN_DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_DATASETS))
        raise ValueError(f"unknown built-in dataset {name!r}; known: {known}") from None
