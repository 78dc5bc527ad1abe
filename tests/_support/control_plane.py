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


def make_awkward_ref() -> SampleRef:
    """A ref whose strings hold what JSON must escape or pass through, and the largest counts."""
    text = 'quote " back\\slash \n\t\x00\x1f é 漢 \U0001f600 </script>'
    return SampleRef(
        sample_id=text,
        run_id="r",
        feature_uri=f"file:///{text}",
        feature_keys=(text, "k"),
        feature_specs=(FeatureSpec(text, (), "bf16"), FeatureSpec("h", (2, 3), "bf16")),
        num_tokens=7,
        estimated_bytes=2**63 - 1,
    )
