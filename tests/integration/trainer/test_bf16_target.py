"""A bf16-saved Hugging Face target trains: it loads as bf16, its features stay bf16 on disk, and the
fp32 draft learns from them.

The target is a tiny Llama built here from a config (no download) with the bundled tokenizer, saved
the way bf16 checkpoints on the hub are, with ``dtype: bfloat16`` in its ``config.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean

import pytest
import torch
from safetensors import safe_open
from specforge_trainer.build import build_offline_trainer
from specforge_trainer.models.target import BUILTIN_HEAD_SCALE, describe_target
from transformers import LlamaConfig, LlamaForCausalLM

pytestmark = pytest.mark.slow


@pytest.fixture
def bf16_target_dir(tmp_path: Path) -> Path:
    tokenizer = describe_target(builtin="tiny-llama").tokenizer
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=5,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         initializer_range=0.05, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    torch.manual_seed(7)
    directory = tmp_path / "bf16-target"
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.mul_(BUILTIN_HEAD_SCALE)  # peaked next-token choices, as the built-in target
    model.to(torch.bfloat16).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    assert json.loads((directory / "config.json").read_text())["dtype"] == "bfloat16"
    return directory


def test_the_target_loads_in_its_own_dtype(bf16_target_dir: Path) -> None:
    target = describe_target(path=bf16_target_dir).load()
    assert target.model.dtype == torch.bfloat16
    features = target.extract_features(torch.tensor([1, 5, 9, 12]))
    assert features.aux_hidden_states.dtype == features.target_hidden.dtype == torch.bfloat16


def test_a_draft_trains_from_a_bf16_target(
    tmp_path: Path, bf16_target_dir: Path, make_manifest, cpu_context
) -> None:
    run, _ = make_manifest("bf16", epochs=3, batchSize=4, maxLength=64, tttLength=3, learningRate=3e-3)
    run = run.model_copy(update={"spec": run.spec.model_copy(
        update={"target_model": run.spec.target_model.model_copy(
            update={"builtin": None, "path": str(bf16_target_dir)})})})  # fmt: skip
    trainer = build_offline_trainer(
        run, out_dir=tmp_path / "out", feature_store_dir=tmp_path / "features", context=cpu_context
    )
    stored = sorted((tmp_path / "features").glob("*.safetensors"))
    assert len(stored) == 48
    with safe_open(str(stored[0]), framework="pt") as features:
        assert features.get_slice("aux_hidden_states").get_dtype() == "BF16"
        assert features.get_slice("target_hidden").get_dtype() == "BF16"
    assert all(p.dtype == torch.float32 for p in trainer.draft.parameters() if p.requires_grad)
    reports = trainer.train()
    assert len(reports) == 36
    assert all(torch.isfinite(torch.tensor(r.loss)) for r in reports)
    first, last = reports[:6], reports[-6:]
    assert mean(r.loss for r in last) < mean(r.loss for r in first)
    assert mean(r.accuracy[0] for r in last) > mean(r.accuracy[0] for r in first)
