"""The target model: the built-in tiny Llama, a local HF directory, and clear errors for bad paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from specforge_trainer.models.target import default_aux_layer_ids, describe_target


def test_default_aux_layers_follow_eagle3() -> None:
    assert default_aux_layer_ids(32) == (1, 15, 28)
    with pytest.raises(ValueError, match="at least 5 layers"):
        default_aux_layer_ids(4)


def test_builtin_target_is_reproducible_and_frozen() -> None:
    first, second = describe_target(builtin="tiny-llama").load(), describe_target(builtin="tiny-llama").load()
    ids = torch.tensor([1, 4, 20, 30, 40])
    a, b = first.extract_features(ids), second.extract_features(ids)
    assert torch.equal(a.aux_hidden_states, b.aux_hidden_states)
    assert a.aux_hidden_states.shape == (5, 3 * first.hidden_size)
    assert a.target_hidden.shape == (5, first.hidden_size)
    assert not any(p.requires_grad for p in first.model.parameters())


def test_a_local_hf_directory_loads_to_the_same_features(tmp_path: Path) -> None:
    builtin = describe_target(builtin="tiny-llama").load()
    builtin.model.save_pretrained(tmp_path / "model")
    builtin.tokenizer.save_pretrained(tmp_path / "model")
    loaded = describe_target(path=tmp_path / "model").load()
    ids = torch.tensor([1, 4, 20, 30])
    assert torch.equal(
        loaded.extract_features(ids).target_hidden, builtin.extract_features(ids).target_hidden
    )


def test_bad_target_sources(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        describe_target(path=tmp_path)
    with pytest.raises(ValueError, match="exactly one of"):
        describe_target()
    with pytest.raises(ValueError, match="unknown built-in target 'huge'"):
        describe_target(builtin="huge")
