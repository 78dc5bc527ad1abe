"""Builders of control-plane records for tests and benchmarks."""

from __future__ import annotations

import pytest
from specforge_trainer.control_plane import FeatureSpec, SampleRef

#: Every store kind, for ``@pytest.mark.parametrize("store_factory", STORE_KINDS, indirect=True)``.
STORE_KINDS = ["noop", "memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)]


def make_ref(i: int, run_id: str = "run-a", nbytes: int = 1000) -> SampleRef:
    return SampleRef(
        sample_id=f"s{i:05d}",
        run_id=run_id,
        feature_uri=f"file:///features/{run_id}/s{i:05d}.safetensors",
        feature_keys=("hidden_states", "target"),
        feature_specs=(
            FeatureSpec("hidden_states", (128, 3 * 64), "bfloat16"),
            FeatureSpec("target", (128, 64), "bfloat16"),
        ),
        num_tokens=128,
        estimated_bytes=nbytes,
        target_model_version="tiny-llama@seed0",
        tokenizer_version="builtin-v1",
    )
