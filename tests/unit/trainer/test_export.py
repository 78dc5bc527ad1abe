"""``specforge export``: a checkpoint becomes a directory SGLang's EAGLE3 loader takes whole.

The lists below are copied by hand from SGLang's ``python/sglang/srt/models/llama_eagle3.py``
(sgl-project/sglang at 03d5a7771f6082e7737a5f19cae7d1e863087013): the parameters of
``LlamaForCausalLMEagle3`` with one decoder layer and an untied head, its ``stacked_params_mapping``
and the config fields it (and the Llama layers it reuses) reads. When SGLang changes them, update
them here first: the test then shows what the exporter must follow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from specforge_trainer.cli import main
from specforge_trainer.export import (
    SGLANG_CONFIG_FIELDS,
    SGLANG_EAGLE3_PARAMETERS,
    SGLANG_STACKED_PARAMETERS,
    ServingCheckError,
    check_serving_directory,
    export_checkpoint,
)
from specforge_trainer.models.draft import DraftConfig, Eagle3DraftModel
from specforge_trainer.models.draft_vocab import build_draft_vocab
from specforge_trainer.train.checkpoint import save_checkpoint

PINNED_SGLANG_PARAMETERS = {
    "model.fc.weight",
    "model.midlayer.input_layernorm.weight",
    "model.midlayer.hidden_norm.weight",
    "model.midlayer.self_attn.qkv_proj.weight",
    "model.midlayer.self_attn.o_proj.weight",
    "model.midlayer.post_attention_layernorm.weight",
    "model.midlayer.mlp.gate_up_proj.weight",
    "model.midlayer.mlp.down_proj.weight",
    "model.norm.weight",
    "lm_head.weight",
}
PINNED_STACKED = {
    (".qkv_proj", ".q_proj", "q"),
    (".qkv_proj", ".k_proj", "k"),
    (".qkv_proj", ".v_proj", "v"),
    (".gate_up_proj", ".gate_proj", 0),
    (".gate_up_proj", ".up_proj", 1),
}
PINNED_CONFIG_FIELDS = {
    "architectures",
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "rms_norm_eps",
    "rope_theta",
    "rope_scaling",
    "max_position_embeddings",
    "vocab_size",
    "draft_vocab_size",
    "tie_word_embeddings",
    "torch_dtype",
}


def test_the_exporter_follows_the_pinned_sglang_loader() -> None:
    assert set(SGLANG_EAGLE3_PARAMETERS) == PINNED_SGLANG_PARAMETERS
    assert {(fused, part, shard) for part, fused, shard in SGLANG_STACKED_PARAMETERS} == PINNED_STACKED
    assert set(SGLANG_CONFIG_FIELDS) == PINNED_CONFIG_FIELDS


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    config = DraftConfig(
        hidden_size=16,
        intermediate_size=24,
        num_attention_heads=4,
        num_key_value_heads=2,
        target_vocab_size=30,
        draft_vocab_size=8,
        max_position_embeddings=8192,
        torch_dtype="bfloat16",
    )
    vocab = build_draft_vocab([torch.arange(30)], target_vocab_size=30, draft_vocab_size=8)
    draft = Eagle3DraftModel(config, torch.nn.Embedding(30, 16), vocab)
    return save_checkpoint(tmp_path / "ckpt", epoch=0, step=3, draft=draft, training_state={}, keep=1)


def test_sglang_export_is_in_the_target_dtype_and_passes_the_loader_check(
    checkpoint: Path, tmp_path: Path
) -> None:
    out = export_checkpoint(checkpoint, tmp_path / "serve", to="sglang")
    weights = load_file(str(out / "model.safetensors"))
    assert weights["fc.weight"].dtype == torch.bfloat16 and weights["d2t"].dtype == torch.int64
    assert "embed_tokens.weight" not in weights
    original = load_file(str(checkpoint / "model.safetensors"))
    assert torch.equal(weights["lm_head.weight"], original["lm_head.weight"].to(torch.bfloat16))
    assert json.loads((out / "config.json").read_text())["max_position_embeddings"] == 8192


def test_hf_export_keeps_the_fp32_master_weights(checkpoint: Path, tmp_path: Path) -> None:
    out = export_checkpoint(checkpoint, tmp_path / "hf", to="hf")
    assert load_file(str(out / "model.safetensors"))["fc.weight"].dtype == torch.float32


def _broken_copy(
    checkpoint: Path, tmp_path: Path, *, rename: str | None = None, drop_field: str | None = None
) -> Path:
    out = export_checkpoint(checkpoint, tmp_path / "serve", to="sglang")
    weights = load_file(str(out / "model.safetensors"))
    if rename:
        weights["midlayer.attn.o_proj.weight"] = weights.pop(rename)
    save_file(weights, str(out / "model.safetensors"))
    config = json.loads((out / "config.json").read_text())
    config.pop(drop_field or "", None)
    (out / "config.json").write_text(json.dumps(config))
    return out


def test_a_weight_sglang_would_drop_silently_is_reported(checkpoint: Path, tmp_path: Path) -> None:
    out = _broken_copy(checkpoint, tmp_path, rename="midlayer.self_attn.o_proj.weight")
    with pytest.raises(ServingCheckError) as caught:
        check_serving_directory(out)
    assert "'midlayer.attn.o_proj.weight' is not one SGLang loads" in str(caught.value)
    assert "no weight fills SGLang's 'model.midlayer.self_attn.o_proj.weight'" in str(caught.value)


def test_a_config_without_the_targets_context_length_is_reported(checkpoint: Path, tmp_path: Path) -> None:
    out = _broken_copy(checkpoint, tmp_path, drop_field="max_position_embeddings")
    with pytest.raises(ServingCheckError, match="lacks 'max_position_embeddings'"):
        check_serving_directory(out)


def test_a_missing_kv_shard_is_reported(checkpoint: Path, tmp_path: Path) -> None:
    out = export_checkpoint(checkpoint, tmp_path / "serve", to="sglang")
    weights = load_file(str(out / "model.safetensors"))
    del weights["midlayer.self_attn.v_proj.weight"]
    save_file(weights, str(out / "model.safetensors"))
    with pytest.raises(ServingCheckError, match=r"qkv_proj\.weight' gets shards"):
        check_serving_directory(out)


def test_the_cli_exports_and_refuses_a_non_checkpoint(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--to", "sglang", str(checkpoint), str(tmp_path / "serve")]) == 0
    assert "passes SGLang's EAGLE3 loader check" in capsys.readouterr().out
    assert main(["export", "--to", "sglang", str(tmp_path), str(tmp_path / "other")]) == 2
    assert "is not a checkpoint folder" in capsys.readouterr().err
    assert main(["export", "--to", "hf", str(checkpoint), str(tmp_path / "serve")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
