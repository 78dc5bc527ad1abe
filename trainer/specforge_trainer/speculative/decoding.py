"""Greedy decoding of the target, plain and speculative (EAGLE3 chain drafting), with what each cost.

Speculative rounds: the drafter proposes ``k`` tokens after the newest token; one target forward over
``[newest, d_1..d_k]`` (with the target's KV cache) gives the target's own greedy choice after each;
the longest prefix of drafts equal to those choices is accepted plus the target's next choice (the
bonus token), so every round yields between 1 and ``k + 1`` tokens and the output is the target's
greedy decoding, token for token. The target's cache is cropped back to the accepted tokens and the
drafter gets the target's features at them.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

import torch
from transformers import DynamicCache

from specforge_trainer.models.target import TargetModel


class Drafter(Protocol):
    def extend(self, aux_hidden_states: torch.Tensor, next_ids: torch.Tensor) -> None: ...

    def propose(self, steps: int) -> list[int]: ...


@dataclass
class Decoded:
    """One prompt's continuation and its cost; ``accepted`` holds each verify round's accepted drafts."""

    tokens: list[int]
    target_forwards: int
    seconds: float
    accepted: list[int] = field(default_factory=list)


def _finish(tokens: list[int], max_new_tokens: int, stop_ids: Collection[int]) -> tuple[list[int], bool]:
    """Cut at the first stop token (kept) or at ``max_new_tokens``; whether decoding is over."""
    for position, token in enumerate(tokens[:max_new_tokens]):
        if token in stop_ids:
            return tokens[: position + 1], True
    return tokens[:max_new_tokens], len(tokens) >= max_new_tokens


class _TargetRunner:
    """The target's forward with a KV cache: greedy next tokens and EAGLE3 features of the fed tokens."""

    def __init__(self, target: TargetModel) -> None:
        self.target = target
        self.cache = DynamicCache()
        self.forwards = 0
        # transformers 5.x renamed the forward's ``past_key_values`` to ``cache`` (the old name warns).
        parameters = inspect.signature(target.model.forward).parameters
        self._cache_argument = "cache" if "cache" in parameters else "past_key_values"

    @torch.no_grad()
    def feed(self, ids: list[int], *, features: bool) -> tuple[list[int], torch.Tensor | None]:
        """(len(ids),) greedy choices after each fed token, and (len(ids), 3H) features when asked."""
        input_ids = torch.tensor([ids], device=self.target.device)
        output = self.target.model(
            input_ids=input_ids,
            use_cache=True,
            output_hidden_states=features,
            **{self._cache_argument: self.cache},
        )
        self.forwards += 1
        aux = self.target.aux_features(output.hidden_states)[0] if features else None
        return output.logits[0].argmax(-1).tolist(), aux


def greedy_decode(
    target: TargetModel, prompt: list[int], *, max_new_tokens: int, stop_ids: Collection[int] = ()
) -> Decoded:
    started = time.perf_counter()
    runner = _TargetRunner(target)
    choices, _ = runner.feed(prompt, features=False)
    tokens = [choices[-1]]
    while not _finish(tokens, max_new_tokens, stop_ids)[1]:
        choices, _ = runner.feed(tokens[-1:], features=False)
        tokens.append(choices[-1])
    tokens, _ = _finish(tokens, max_new_tokens, stop_ids)
    return Decoded(tokens, runner.forwards, time.perf_counter() - started)


def speculative_decode(
    target: TargetModel,
    drafter: Drafter,
    prompt: list[int],
    *,
    draft_steps: int,
    max_new_tokens: int,
    stop_ids: Collection[int] = (),
) -> Decoded:
    if draft_steps < 1:
        raise ValueError(f"draft_steps must be at least 1, got {draft_steps}")
    started = time.perf_counter()
    runner = _TargetRunner(target)
    choices, aux = runner.feed(prompt, features=True)
    assert aux is not None
    tokens = [choices[-1]]
    drafter.extend(aux, torch.tensor([*prompt[1:], tokens[-1]], device=aux.device))
    cached = len(prompt)  # tokens in the target's KV cache; the newest token is not yet among them
    accepted_per_round: list[int] = []
    while not _finish(tokens, max_new_tokens, stop_ids)[1]:
        drafts = drafter.propose(draft_steps)
        choices, aux = runner.feed([tokens[-1], *drafts], features=True)
        assert aux is not None
        accepted = 0
        while accepted < draft_steps and drafts[accepted] == choices[accepted]:
            accepted += 1
        new = [*drafts[:accepted], choices[accepted]]
        accepted_per_round.append(accepted)
        cached += accepted + 1
        rejected = runner.cache.get_seq_length() - cached
        runner.cache.crop(-rejected)  # a negative count removes that many from the end
        drafter.extend(aux[: accepted + 1], torch.tensor(new, device=aux.device))
        tokens += new
    tokens, _ = _finish(tokens, max_new_tokens, stop_ids)
    return Decoded(tokens, runner.forwards, time.perf_counter() - started, accepted_per_round)
