"""Chat tokenisation: the loss mask covers exactly the assistant content the target predicts."""

from __future__ import annotations

import pytest
from specforge_trainer.data.chat_jsonl import ChatSample
from specforge_trainer.data.tokenize import tokenize_chat
from specforge_trainer.resources import BUILTIN_TOKENIZER_DIR
from transformers import AutoTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(BUILTIN_TOKENIZER_DIR, local_files_only=True)


def _chat() -> ChatSample:
    messages = (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "2 plus 2 is 4."},
        {"role": "user", "content": "And 3 plus 3?"},
        {"role": "assistant", "content": "6."},
    )
    return ChatSample(index=0, sample_key="k", messages=messages)


def test_mask_marks_positions_that_predict_assistant_tokens(tokenizer) -> None:
    sample = tokenize_chat(_chat(), tokenizer, max_length=512)
    ids, mask = sample.input_ids.tolist(), sample.loss_mask.tolist()
    predicted = [ids[t + 1] for t in range(len(ids) - 1) if mask[t]]
    end = tokenizer.convert_tokens_to_ids("<|end|>")
    # The two answers, each closed by <|end|>; the role headers and the user turns are not learned.
    assert tokenizer.decode(predicted) == "2 plus 2 is 4.<|end|>6.<|end|>"
    assert predicted.count(end) == 2
    assert mask[-1] == 0


def test_truncation_to_max_length(tokenizer) -> None:
    full = tokenize_chat(_chat(), tokenizer, max_length=512)
    short = tokenize_chat(_chat(), tokenizer, max_length=12)
    assert short.input_ids.tolist() == full.input_ids[:12].tolist()
    assert len(short.loss_mask) == 12


def test_max_length_below_two_is_refused(tokenizer) -> None:
    with pytest.raises(ValueError, match="max_length must be at least 2"):
        tokenize_chat(_chat(), tokenizer, max_length=1)
