"""Speculative decoding: lossless against the target's greedy decoding, acceptance counted right, and the
incremental drafter drafting what the training unroll trains (positions advancing one per draft step)."""

from __future__ import annotations

import pytest
import torch
from _support.manifests import minimal_run
from specforge_api import SpecForgeRun
from specforge_trainer.models.draft import Eagle3DraftModel
from specforge_trainer.run_data import RunData, build_draft, load_run_data
from specforge_trainer.speculative.decoding import greedy_decode, speculative_decode
from specforge_trainer.speculative.drafter import ChainDrafter
from specforge_trainer.speculative.evaluation import (
    eval_prompts,
    held_out_chats,
    locate_mismatch,
    position_acceptance,
    stop_token_ids,
)
from specforge_trainer.train.distributed import ParallelContext


@pytest.fixture(scope="module")
def built() -> tuple[SpecForgeRun, RunData, Eagle3DraftModel]:
    run = SpecForgeRun.model_validate(minimal_run("spec", training={"maxLength": 64, "draftVocabSize": 256}))
    data = load_run_data(run, ParallelContext(rank=0, world_size=1, device=torch.device("cpu")))
    return run, data, build_draft(run, data).eval()


def test_the_drafters_chain_is_the_training_unrolls_last_row(built) -> None:
    _, data, draft = built
    context = data.samples[0].input_ids[:20]
    aux = data.target.extract_features(context).aux_hidden_states.float()
    newest = 17  # the token after the context, as the target would have chosen it
    drafter = ChainDrafter(draft)
    drafter.extend(aux, torch.cat((context[1:], torch.tensor([newest]))))
    chain, chain_logits = drafter.propose_with_logits(4)
    # Training's unroll over the same context: step i reads the token at t + 1 + i; at the last row
    # those are the newest token and then the chain's own guesses.
    ids = torch.cat((context, torch.tensor([newest, *chain[:-1]])))[None]
    hidden = draft.project_features(aux[None])
    cache = draft.start_unroll(torch.ones(1, len(context), dtype=torch.long))
    with torch.no_grad():
        for step in range(4):
            hidden, logits = draft.step(ids[:, 1 + step : 1 + step + len(context)], hidden, cache)
            torch.testing.assert_close(chain_logits[step], logits[0, -1], rtol=1e-4, atol=1e-5)
            assert chain[step] == int(draft.draft_ids_to_target[logits[0, -1].argmax()])


def test_eval_prompts_are_the_held_out_conversations_training_never_saw(built) -> None:
    run, data, _ = built
    held_out = held_out_chats(run)
    assert len(held_out) == run.spec.dataset.held_out_conversations
    assert not {sample.sample_key for sample in data.samples} & {chat.sample_key for chat in held_out}
    prompts = eval_prompts(run, data.target, 3)
    assert len(prompts) == 3
    for chat, prompt in zip(held_out, prompts, strict=False):
        last_user = max(i for i, m in enumerate(chat.messages) if m["role"] == "user")
        assert chat.messages[last_user]["content"] in data.target.tokenizer.decode(prompt)


@pytest.mark.parametrize("draft_steps", [1, 4])
def test_speculative_decoding_is_lossless_with_an_untrained_draft(built, draft_steps: int) -> None:
    run, data, draft = built
    stops = stop_token_ids(data.target)
    for prompt in eval_prompts(run, data.target, 2):
        greedy = greedy_decode(data.target, prompt, max_new_tokens=12, stop_ids=stops)
        speculative = speculative_decode(
            data.target,
            ChainDrafter(draft),
            prompt,
            draft_steps=draft_steps,
            max_new_tokens=12,
            stop_ids=stops,
        )
        assert speculative.tokens == greedy.tokens
        assert speculative.target_forwards == 1 + len(speculative.accepted)
        assert len(greedy.tokens) == greedy.target_forwards


class OracleDrafter:
    """Proposes the target's own greedy continuation, optionally wrong from draft ``wrong_from`` on."""

    def __init__(self, prompt: list[int], continuation: list[int], wrong_from: int | None = None) -> None:
        self.known = len(prompt) - 1  # context rows so far: prompt rows minus the first token
        self.rows = 0
        self.continuation = continuation
        self.wrong_from = wrong_from

    def extend(self, aux_hidden_states: torch.Tensor, next_ids: torch.Tensor) -> None:
        self.rows += next_ids.numel()

    def propose(self, steps: int) -> list[int]:
        newest = self.rows - self.known - 1  # index of the newest token in the continuation
        drafts = (self.continuation + [0] * steps)[newest + 1 : newest + 1 + steps]
        if self.wrong_from is not None:
            drafts[self.wrong_from :] = [token + 1 for token in drafts[self.wrong_from :]]
        return drafts


@pytest.mark.parametrize(
    ("wrong_from", "accepted", "forwards"),
    [
        (None, [3, 3], 3),  # 1 token from the prompt's forward, then 3 drafts + 1 bonus twice: 9
        (1, [1, 1, 1, 1], 5),  # the second draft is always wrong: 1 + 4 rounds of 2 tokens
        (0, [0] * 8, 9),  # nothing accepted: one token per forward, as greedy
    ],
)
def test_acceptance_is_counted_as_by_hand(built, wrong_from, accepted, forwards) -> None:
    run, data, _ = built
    prompt = eval_prompts(run, data.target, 1)[0]
    greedy = greedy_decode(data.target, prompt, max_new_tokens=9)
    oracle = OracleDrafter(prompt, greedy.tokens, wrong_from)
    speculative = speculative_decode(data.target, oracle, prompt, draft_steps=3, max_new_tokens=9)
    assert speculative.tokens == greedy.tokens
    assert speculative.accepted == accepted
    assert speculative.target_forwards == forwards


def test_acceptance_by_position_is_conditional_on_the_drafts_before() -> None:
    assert position_acceptance([3, 1, 0, 2], 3) == [0.75, 2 / 3, 0.5]
    assert position_acceptance([], 2) == [0.0, 0.0]


def test_a_mismatch_is_located_with_the_targets_top2_margin(built) -> None:
    run, data, _ = built
    prompt = eval_prompts(run, data.target, 1)[0]
    greedy = greedy_decode(data.target, prompt, max_new_tokens=6).tokens
    other = [*greedy[:3], greedy[3] + 1, *greedy[4:]]
    mismatch = locate_mismatch(data.target, 7, prompt, greedy, other)
    assert (mismatch.prompt, mismatch.position) == (7, 3)
    assert (mismatch.greedy_token, mismatch.speculative_token) == (greedy[3], greedy[3] + 1)
    features = data.target.extract_features(torch.tensor(prompt + greedy[:3]))
    with torch.no_grad():
        best = data.target.lm_head(features.target_hidden)[-1].topk(2).values
    assert mismatch.top2_logit_margin == pytest.approx(float(best[0] - best[1]), rel=1e-4)
