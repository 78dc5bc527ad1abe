"""Checkpoint folders: atomic, synced publication; newest-intact selection with fallback; plain-type
training state; keeping the last K."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import build_draft_vocab
from specforge_trainer.train import checkpoint as checkpoint_module
from specforge_trainer.train.checkpoint import (
    CorruptCheckpoint,
    checkpoint_folders,
    latest_checkpoint,
    load_checkpoint,
    restore_newest_intact,
    save_checkpoint,
    verify_checkpoint,
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


def test_every_file_and_folder_is_synced_before_the_checkpoint_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[str, bool]] = []  # (what, whether the checkpoint was visible yet)
    final = tmp_path / "epoch_0_step_7"
    real_fsync = checkpoint_module._fsync

    def spy(path: Path) -> None:
        synced.append((path.name if path.parent != tmp_path.parent else "root", final.exists()))
        real_fsync(path)

    monkeypatch.setattr(checkpoint_module, "_fsync", spy)
    save_checkpoint(tmp_path, epoch=0, step=7, draft=_draft(7), training_state={}, keep=1)
    before = [name for name, visible in synced if not visible]
    staging = f".{final.name}.tmp-{os.getpid()}"
    assert before == ["model.safetensors", "config.json", "training_state.pt", "complete.json", staging]
    assert synced[-1] == ("root", True)  # the rename itself, once it happened


def test_a_folder_without_its_completeness_record_is_not_a_checkpoint(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, epoch=0, step=4, draft=_draft(4), training_state={"step": 4}, keep=3)
    newer = save_checkpoint(tmp_path, epoch=0, step=8, draft=_draft(8), training_state={"step": 8}, keep=3)
    (newer / "complete.json").unlink()
    assert latest_checkpoint(tmp_path) == tmp_path / "epoch_0_step_4"


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, epoch=0, step=4, draft=_draft(4), training_state={"step": 4}, keep=3)
    newest = save_checkpoint(tmp_path, epoch=0, step=8, draft=_draft(8), training_state={"step": 8}, keep=3)
    state = newest / "training_state.pt"
    damaged = bytearray(state.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size, one byte flipped
    state.write_bytes(bytes(damaged))
    with pytest.raises(CorruptCheckpoint, match="SHA-256"):
        verify_checkpoint(newest)
    restored = _draft(0)
    folder, loaded = restore_newest_intact(tmp_path, restored)  # type: ignore[misc]
    assert folder.name == "epoch_0_step_4" and loaded == {"step": 4}
    assert torch.equal(restored.fc.weight, _draft(4).fc.weight)


def test_training_state_loads_plain_types_and_tensors_only(tmp_path: Path) -> None:
    folder = save_checkpoint(
        tmp_path, epoch=0, step=1, draft=_draft(1), training_state={"step": 1, "rng": torch.zeros(3)}, keep=1
    )
    torch.save({"step": 1, "payload": Path("/etc/passwd")}, folder / "training_state.pt")  # not plain
    (folder / "complete.json").unlink()  # as if a writer with access to the volume replaced it all
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        load_checkpoint(folder, _draft(0))


def test_saving_a_step_again_replaces_it_whole(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, epoch=0, step=3, draft=_draft(1), training_state={"seen": 1}, keep=2)
    folder = save_checkpoint(tmp_path, epoch=0, step=3, draft=_draft(2), training_state={"seen": 2}, keep=2)
    assert load_checkpoint(folder, _draft(0)) == {"seen": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_0_step_3"]  # nothing moved aside is left
