"""Checkpoint folders: atomic publication, newest-complete selection, keeping the last K."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import build_draft_vocab
from specforge_trainer.train.checkpoint import (
    checkpoint_folders,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from transformers import LlamaConfig


def _draft(seed: int) -> Eagle3DraftModel:
    torch.manual_seed(seed)
    config = DraftConfig(
        hidden_size=8, intermediate_size=16, num_attention_heads=2, target_vocab_size=20, draft_vocab_size=6
    )
    vocab = build_draft_vocab([torch.arange(20)], target_vocab_size=20, draft_vocab_size=6)
    return Eagle3DraftModel(config, torch.nn.Embedding(20, 8), vocab)


def test_keeps_the_last_k_and_resumes_from_the_newest(tmp_path: Path) -> None:
    for step in (5, 10, 15):
        save_checkpoint(
            tmp_path, epoch=0, step=step, draft=_draft(step), training_state={"step": step}, keep=2
        )
    assert [p.name for p in checkpoint_folders(tmp_path)] == ["epoch_0_step_10", "epoch_0_step_15"]
    restored = _draft(0)
    state = load_checkpoint(latest_checkpoint(tmp_path), restored)  # type: ignore[arg-type]
    assert state == {"step": 15}
    assert torch.equal(restored.fc.weight, _draft(15).fc.weight)


def test_a_pinned_checkpoint_outlives_retention(tmp_path: Path) -> None:
    for step in (5, 10, 15, 20):
        save_checkpoint(
            tmp_path,
            epoch=0,
            step=step,
            draft=_draft(step),
            training_state={},
            keep=1,
            pinned={"epoch_0_step_5"},
        )
    assert [p.name for p in checkpoint_folders(tmp_path)] == ["epoch_0_step_5", "epoch_0_step_20"]
    assert (
        latest_checkpoint(tmp_path) == tmp_path / "epoch_0_step_20"
    )  # pinning never changes the resume point


def test_a_half_written_checkpoint_is_ignored(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, epoch=0, step=4, draft=_draft(4), training_state={}, keep=3)
    (tmp_path / ".epoch_0_step_8.tmp-123").mkdir()  # what a crash mid-write leaves behind
    (tmp_path / ".epoch_0_step_8.tmp-123" / "model.safetensors").write_bytes(b"trunc")
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch_0_step_4"


def test_weights_are_a_serving_style_eagle3_draft(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path, epoch=1, step=3, draft=_draft(1), training_state={}, keep=1)
    weights = load_file(str(folder / "model.safetensors"))
    for name in (
        "fc.weight",
        "midlayer.self_attn.q_proj.weight",
        "midlayer.hidden_norm.weight",
        "norm.weight",
        "lm_head.weight",
        "d2t",
        "t2d",
    ):
        assert name in weights
    assert weights["midlayer.self_attn.q_proj.weight"].shape == (8, 16)  # q/k/v take 2H
    assert "embed_tokens.weight" not in weights  # the frozen copy of the target's: SGLang takes the target's
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLMEagle3"] and config["draft_vocab_size"] == 6


def test_the_config_follows_the_target_so_sglang_serves_it_beside_it(tmp_path: Path) -> None:
    target = LlamaConfig(
        hidden_size=64,
        intermediate_size=96,
        num_attention_heads=8,
        num_key_value_heads=2,
        head_dim=16,
        vocab_size=20,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192,
        },
        dtype="bfloat16",
    )
    config = DraftConfig.for_target(target, draft_vocab_size=6)
    vocab = build_draft_vocab([torch.arange(20)], target_vocab_size=20, draft_vocab_size=6)
    draft = Eagle3DraftModel(config, torch.nn.Embedding(20, 64), vocab)
    folder = save_checkpoint(tmp_path, epoch=0, step=1, draft=draft, training_state={}, keep=1)
    saved = json.loads((folder / "config.json").read_text())
    assert saved["max_position_embeddings"] == 131072 and saved["torch_dtype"] == "bfloat16"
    assert (saved["num_attention_heads"], saved["num_key_value_heads"], saved["head_dim"]) == (8, 2, 16)
    assert saved["rope_theta"] == 500000.0 and saved["rope_scaling"]["rope_type"] == "llama3"
    assert saved["rope_scaling"]["factor"] == 8.0 and saved["tie_word_embeddings"] is False
    weights = load_file(str(folder / "model.safetensors"))
    assert weights["midlayer.self_attn.k_proj.weight"].shape == (2 * 16, 2 * 64)


def test_a_checkpoint_of_another_shape_is_refused(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path, epoch=0, step=1, draft=_draft(1), training_state={}, keep=1)
    config = DraftConfig(
        hidden_size=8,
        intermediate_size=16,
        num_attention_heads=2,
        num_key_value_heads=1,
        target_vocab_size=20,
        draft_vocab_size=6,
    )
    vocab = build_draft_vocab([torch.arange(20)], target_vocab_size=20, draft_vocab_size=6)
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_checkpoint(folder, Eagle3DraftModel(config, torch.nn.Embedding(20, 8), vocab))
