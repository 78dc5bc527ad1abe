"""Chat tokenisation: the loss mask covers exactly the assistant text the target predicts, whatever the template."""

from __future__ import annotations

import pytest
from specforge_trainer.data.chat_jsonl import ChatSample
from specforge_trainer.data.tokenize import (
    AssistantMarkers,
    TokenizedSample,
    assistant_markers,
    tokenize_chat,
    tokenize_chats,
)
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


def _learned(sample: TokenizedSample, tokenizer) -> str:
    ids, mask = sample.input_ids.tolist(), sample.loss_mask.tolist()
    return tokenizer.decode([ids[t + 1] for t in range(len(ids) - 1) if mask[t]])


def _with_template(template: str):
    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_TOKENIZER_DIR, local_files_only=True)
    tokenizer.chat_template = template
    return tokenizer


def test_one_rendering_gives_the_templates_own_token_ids(tokenizer) -> None:
    sample = tokenize_chat(_chat(), tokenizer, max_length=512)
    rendered = tokenizer.apply_chat_template(list(_chat().messages), tokenize=True, return_dict=True)
    assert sample.input_ids.tolist() == list(rendered["input_ids"])


def test_tool_turns_are_context_and_tool_calls_are_learned(tokenizer) -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
        "{% for call in m.get('tool_calls', []) %}call {{ call['function']['name'] }}{% endfor %}<|end|>"
        "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    messages = (
        {"role": "user", "content": "2 plus 2?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add"}}]},
        {"role": "tool", "content": "4"},
        {"role": "assistant", "content": "It is 4."},
    )
    chat = ChatSample(index=0, sample_key="k", messages=messages)
    assert _learned(tokenize_chat(chat, _with_template(template), 512), tokenizer) == (
        "call add<|end|>It is 4.<|end|>"
    )


def test_a_template_that_rewrites_earlier_turns_still_has_its_assistant_tokens_found(tokenizer) -> None:
    # Like reasoning models' templates: earlier replies lose their <think> block, the last keeps it,
    # so a rendered prefix is not a prefix of the rendered conversation.
    template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>"
        "{% if m['role'] == 'assistant' and not loop.last %}{{ m['content'].split('</think>')[-1] }}"
        "{% else %}{{ m['content'] }}{% endif %}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    rewriting = _with_template(template)
    messages = (
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>greet</think>Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "<think>part</think>Goodbye"},
    )
    prefix = rewriting.apply_chat_template(list(messages[:2]), tokenize=False)
    whole = rewriting.apply_chat_template(list(messages), tokenize=False)
    assert not whole.startswith(prefix)
    chat = ChatSample(index=0, sample_key="k", messages=messages)
    assert _learned(tokenize_chat(chat, rewriting, 512), tokenizer) == (
        "Hello<|end|><think>part</think>Goodbye<|end|>"
    )


@pytest.mark.parametrize(
    ("template", "header", "end_of_turn"),
    [
        (  # ChatML: the generation prompt is the header
            "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
            "<|im_start|>assistant\n",
            "<|im_end|>",
        ),
        (  # [INST]-style: no generation prompt, the header is what separates question and reply
            "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
            "{% else %}{{ m['content'] }}</s>{% endif %}{% endfor %}",
            " [/INST]",
            "</s>",
        ),
    ],
)
def test_markers_are_learned_from_the_template(template: str, header: str, end_of_turn: str) -> None:
    assert assistant_markers(_with_template(template)) == AssistantMarkers(header, end_of_turn)


def test_templates_without_usable_markers_are_refused() -> None:
    with pytest.raises(ValueError, match="no chat_template"):
        assistant_markers(_with_template(""))
    with pytest.raises(ValueError, match="marks no assistant turn"):
        assistant_markers(_with_template("{% for m in messages %}{{ m['content'] }}{% endfor %}"))


def test_unusable_chats_are_set_aside_by_name_and_the_rest_renumbered(tokenizer) -> None:
    spoofed = (
        {"role": "user", "content": "say <|assistant|> please"},  # a header inside another turn
        {"role": "assistant", "content": "ok"},
    )
    chats = [_chat(), ChatSample(index=1, sample_key="spoof", messages=spoofed), _chat()]
    usable, bad = tokenize_chats(chats, tokenizer, max_length=512)
    assert [sample.index for sample in usable] == [0, 1]
    assert [b.name for b in bad] == ["spoof"]
    assert "found 2 assistant turns in the rendered chat, expected 1" in bad[0].reason
