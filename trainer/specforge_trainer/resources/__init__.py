"""Data shipped inside the package: the ``chat-mini`` dataset and the tokenizer the built-in
``tiny-llama`` target uses, and ``smol-chats`` (prompts of five kinds answered by SmolLM2-135M-Instruct
itself, the data the demo's draft learns that target from).

Shipping them as package data (not repo-relative files) means a pip install and the trainer image
can run the demo with no download. ``generate.py`` rebuilds chat-mini and the tokenizer from a fixed
seed; ``hack/smol_prompts.py`` writes smol-chats' prompts and ``specforge regenerate`` its answers (the
README gives the command).
"""

from __future__ import annotations

from pathlib import Path

_RESOURCES_DIR = Path(__file__).parent
BUILTIN_DATASETS = {
    "chat-mini": _RESOURCES_DIR / "chat_mini.jsonl",
    "smol-chats": _RESOURCES_DIR / "smol_chats.jsonl",
}
BUILTIN_TOKENIZER_DIR = _RESOURCES_DIR / "chat_mini_tokenizer"


def builtin_dataset_path(name: str) -> Path:
    """The bundled JSONL file for a built-in dataset name; a clear error names the known ones."""
    try:
        return BUILTIN_DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_DATASETS))
        raise ValueError(f"unknown built-in dataset {name!r}; known: {known}") from None
