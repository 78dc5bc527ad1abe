"""Turn a conversation into ``input_ids`` and an assistant-only ``loss_mask`` with the chat template.

Each conversation is rendered once, as the target will see it. Assistant turns are then located in
the rendered text by the template's own markers, learned once per tokenizer by rendering a probe
chat: the *header* the template writes before an assistant reply (what ``add_generation_prompt``
adds) and the *end-of-turn* text it writes after one. Everything from a header's end through the
end-of-turn is assistant text, and a token is an assistant token when its character span overlaps
it. Working from the final rendering (not from rendered prefixes) keeps templates that rewrite
earlier turns (reasoning stripped from history, tool calls reformatted) usable, and ``tool`` turns
are never learned because they carry another header.

Mask convention (the trainer relies on it): ``loss_mask[t] = 1`` when the token at ``t + 1`` is an
assistant token, i.e. when the target's logits at ``t`` predict something worth training on.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jinja2 import TemplateError
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from specforge_trainer.data.chat_jsonl import BadSample, ChatSample, DatasetError

_PROBE_QUESTION = "SPECFORGE-PROBE-QUESTION"
_PROBE_REPLY = "SPECFORGE-PROBE-REPLY"


@dataclass(frozen=True)
class TokenizedSample:
    index: int
    sample_key: str
    input_ids: torch.Tensor  # (T,) int64
    loss_mask: torch.Tensor  # (T,) int64, see module docstring


@dataclass(frozen=True)
class AssistantMarkers:
    """The text a chat template puts around every assistant reply."""

    header: str
    end_of_turn: str


def _render(
    tokenizer: PreTrainedTokenizerBase, sample_messages: Sequence[dict[str, Any]], **options: Any
) -> str:
    rendered = tokenizer.apply_chat_template(list(sample_messages), tokenize=False, **options)
    if not isinstance(rendered, str):
        raise TypeError(f"the chat template rendered {type(rendered).__name__}, not text")
    return rendered


def assistant_markers(tokenizer: PreTrainedTokenizerBase) -> AssistantMarkers:
    """Learn the template's assistant header and end-of-turn from a probe chat; ValueError if it has none."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the target's tokenizer has no chat_template, so chats cannot be rendered")
    if not tokenizer.is_fast:
        raise ValueError(
            "the target's tokenizer is not a fast tokenizer (no character offsets to locate turns)"
        )
    question = [{"role": "user", "content": _PROBE_QUESTION}]
    try:
        prompt = _render(tokenizer, question)
        with_header = _render(tokenizer, question, add_generation_prompt=True)
        full = _render(tokenizer, [*question, {"role": "assistant", "content": _PROBE_REPLY}])
    except TemplateError as error:
        raise ValueError(f"the chat template cannot render a user/assistant exchange: {error}") from None
    reply_at = full.find(_PROBE_REPLY)
    if reply_at < 0:
        raise ValueError("the chat template does not render an assistant reply's content")
    header = with_header[len(prompt) :] if with_header.startswith(prompt) else ""
    if not header.strip():  # no generation prompt (e.g. [INST]-style): what separates question and reply
        header = full[full.find(_PROBE_QUESTION) + len(_PROBE_QUESTION) : reply_at]
    end_of_turn = full[reply_at + len(_PROBE_REPLY) :].strip()
    if not header.strip() or not end_of_turn:
        raise ValueError(
            f"the chat template marks no assistant turn (header {header!r}, end of turn {end_of_turn!r})"
        )
    return AssistantMarkers(header=header, end_of_turn=end_of_turn)


def assistant_spans(text: str, markers: AssistantMarkers) -> list[tuple[int, int]]:
    """Character spans of the assistant turns in rendered ``text``: after each header, through its end."""
    spans, cursor = [], 0
    while (header_at := text.find(markers.header, cursor)) >= 0:
        start = header_at + len(markers.header)
        end_at = text.find(markers.end_of_turn, start)
        stop = len(text) if end_at < 0 else end_at + len(markers.end_of_turn)
        spans.append((start, stop))
        cursor = stop
    return spans


def _assistant_flags(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[bool]:
    starts = [start for start, _ in spans]
    flags = []
    for token_start, token_end in offsets:
        # The last span starting before this token's end is the only one it can overlap.
        span = bisect.bisect_left(starts, token_end) - 1
        flags.append(span >= 0 and token_end > token_start and spans[span][1] > token_start)
    return flags


def tokenize_chat(
    sample: ChatSample,
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    markers: AssistantMarkers | None = None,
) -> TokenizedSample:
    """Render ``sample`` once and mask its assistant tokens; DatasetError when they cannot be located."""
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    markers = markers or assistant_markers(tokenizer)
    try:
        text = _render(tokenizer, sample.messages, tools=list(sample.tools) if sample.tools else None)
    except (TemplateError, TypeError, KeyError, IndexError) as error:
        raise DatasetError(f"the chat template cannot render it ({type(error).__name__}: {error})") from None
    spans = assistant_spans(text, markers)
    expected = sum(message["role"] == "assistant" for message in sample.messages)
    if len(spans) != expected:
        raise DatasetError(
            f"found {len(spans)} assistant turns in the rendered chat, expected {expected} "
            f"(an assistant header {markers.header!r} inside another turn's text?)"
        )
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])[:max_length]
    is_assistant = _assistant_flags(encoded["offset_mapping"], spans)[:max_length]
    loss_mask = [int(flag) for flag in is_assistant[1:]] + [0]
    return TokenizedSample(
        index=sample.index,
        sample_key=sample.sample_key,
        input_ids=torch.tensor(ids, dtype=torch.long),
        loss_mask=torch.tensor(loss_mask, dtype=torch.long),
    )


def tokenize_chats(
    samples: Sequence[ChatSample], tokenizer: PreTrainedTokenizerBase, max_length: int
) -> tuple[list[TokenizedSample], list[BadSample]]:
    """Tokenize every conversation that can be; the usable ones are renumbered 0..N-1 (training order
    indexes them), the rest come back as :class:`BadSample` named by their key."""
    markers = assistant_markers(tokenizer)
    usable: list[TokenizedSample] = []
    bad: list[BadSample] = []
    for sample in samples:
        try:
            tokenized = tokenize_chat(sample, tokenizer, max_length, markers)
        except DatasetError as error:
            bad.append(BadSample(name=sample.sample_key, reason=str(error)))
            continue
        usable.append(
            TokenizedSample(len(usable), tokenized.sample_key, tokenized.input_ids, tokenized.loss_mask)
        )
    return usable, bad
