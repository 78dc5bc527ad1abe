"""Turn a conversation into ``input_ids`` and an assistant-only ``loss_mask`` with the chat template.

The mask is found by rendering growing prefixes of the conversation: the tokens an assistant turn
adds are the ones to learn. Mask convention (the trainer relies on it): ``loss_mask[t] = 1`` when the
token at ``t + 1`` is an assistant token, i.e. when the target's logits at ``t`` predict something
worth training on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from specforge_trainer.data.chat_jsonl import ChatSample


@dataclass(frozen=True)
class TokenizedSample:
    index: int
    sample_key: str
    input_ids: torch.Tensor  # (T,) int64
    loss_mask: torch.Tensor  # (T,) int64, see module docstring


def _render(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], *, generation_prompt: bool = False
) -> list[int]:
    rendered = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    ids = rendered["input_ids"] if isinstance(rendered, dict) or hasattr(rendered, "keys") else rendered
    return list(ids)


def tokenize_chat(sample: ChatSample, tokenizer: PreTrainedTokenizerBase, max_length: int) -> TokenizedSample:
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2, got {max_length}")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the target's tokenizer has no chat_template, so chats cannot be rendered")
    ids: list[int] = []
    is_assistant: list[bool] = []

    def extend(prefix: list[int], assistant: bool) -> None:
        if prefix[: len(ids)] != ids:
            raise ValueError(
                f"sample {sample.sample_key!r}: the chat template does not render conversation prefixes "
                "as prefixes, so assistant tokens cannot be located"
            )
        is_assistant.extend([assistant] * (len(prefix) - len(ids)))
        ids.extend(prefix[len(ids) :])

    for end, message in enumerate(sample.messages, start=1):
        if message["role"] == "assistant":  # the role header the template adds is not learned
            extend(_render(tokenizer, list(sample.messages[: end - 1]), generation_prompt=True), False)
        extend(_render(tokenizer, list(sample.messages[:end])), message["role"] == "assistant")
    ids, is_assistant = ids[:max_length], is_assistant[:max_length]
    loss_mask = [int(flag) for flag in is_assistant[1:]] + [0]
    return TokenizedSample(
        index=sample.index,
        sample_key=sample.sample_key,
        input_ids=torch.tensor(ids, dtype=torch.long),
        loss_mask=torch.tensor(loss_mask, dtype=torch.long),
    )
