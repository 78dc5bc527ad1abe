"""``specforge eval``: a run's trained draft measured by real speculative decoding against its target.

Prompts are the context of the run's held-out conversations (``spec.dataset.heldOutConversations``,
the file's last ones, which training never reads): every turn before the final assistant reply, with
the template's generation prompt. The target then answers them twice, by plain greedy decoding and
speculatively with the draft, and the two answers must agree token for token: lossless is the
product's promise, so the CLI fails on a mismatch unless told to allow it. A bf16 (or fp16) target can
legitimately differ at a near-tie, where the verify forward's batched arithmetic rounds the top two
logits differently from a one-token forward; each mismatch is reported with its position and the
target's top-two logit gap there, which tells such a tie from a decoding bug. Reported beside the real
acceptance length is the simulated one training logged (from per-position accuracy, mean of the
checkpoint's last steps), so the two can be compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import mean
from typing import Any

import torch
from specforge_api import SpecForgeRun

from specforge_trainer.data.chat_jsonl import ChatSample, read_chat_jsonl
from specforge_trainer.data.held_out import split_held_out
from specforge_trainer.data.tokenize import assistant_markers
from specforge_trainer.models.target import TargetModel
from specforge_trainer.preflight import check_eval_prompts
from specforge_trainer.regeneration import source_dataset
from specforge_trainer.run_data import build_draft, load_run_data
from specforge_trainer.speculative.decoding import Decoded, greedy_decode, speculative_decode
from specforge_trainer.speculative.drafter import ChainDrafter
from specforge_trainer.train.checkpoint import latest_checkpoint, load_checkpoint
from specforge_trainer.train.distributed import ParallelContext

SIMULATED_OVER_LAST_STEPS = 10


@dataclass(frozen=True)
class Mismatch:
    """The first token where speculative and plain greedy output differ.

    ``top2_logit_margin`` is the target's margin between its two best tokens there (one uncached
    forward): a margin of about one rounding step of the target's dtype means the verify forward's
    batched arithmetic broke a near-tie differently (bf16 on CPU/GPU), not a decoding bug.
    """

    prompt: int
    position: int
    greedy_token: int
    speculative_token: int
    top2_logit_margin: float


@dataclass(frozen=True)
class EvalReport:
    checkpoint: str
    prompts: int  # held-out conversations answered
    held_out_conversations: int  # the run's held-out set, never trained on
    draft_steps: int
    max_new_tokens: int
    acceptance_length: float  # mean accepted draft tokens per verify (bonus token not counted)
    tokens_per_target_forward: float  # generated tokens / target forwards, prefill included
    position_acceptance: list[float]  # P(draft i accepted | drafts before it accepted), i = 1..k
    identical_to_greedy: bool
    mismatched_prompts: list[int]
    mismatches: list[Mismatch]  # where each mismatched prompt diverges, and how close the target's call was
    generated_tokens: int
    speculative_seconds: float
    greedy_seconds: float
    speedup: float  # greedy wall-clock / speculative wall-clock
    simulated_acceptance_length: float | None  # training's metric, mean of the checkpoint's last steps

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalReport:
        return cls(**{**data, "mismatches": [Mismatch(**found) for found in data["mismatches"]]})


def resolve_checkpoint(path: Path) -> Path:
    """A checkpoint folder, or the newest one under a run's output directory."""
    if (path / "model.safetensors").is_file():
        return path
    newest = latest_checkpoint(path)
    if newest is None:
        raise FileNotFoundError(
            f"no draft checkpoint in {str(path)!r} (expected model.safetensors or epoch_N_step_M/)"
        )
    return newest


def held_out_chats(run: SpecForgeRun) -> list[ChatSample]:
    """The conversations training left out, as :func:`load_training_set` splits them."""
    chats = read_chat_jsonl(source_dataset(run)).samples
    return split_held_out(chats, run.spec.dataset.held_out_conversations).held_out


def eval_prompts(run: SpecForgeRun, target: TargetModel, count: int, *, room: int = 0) -> list[list[int]]:
    """Token ids of the first ``count`` held-out conversations' context, ready for the assistant's reply
    (a conversation that opens with the reply has none and is skipped); each keeps its newest tokens
    when it and ``room`` more would pass the target's positions."""
    prompts = [_prompt_ids(chat, target) for chat in held_out_chats(run)[:count]]
    positions = getattr(target.model.config, "max_position_embeddings", None) or 1 << 30
    return [prompt[-(positions - room) :] for prompt in prompts if prompt]


def _prompt_ids(chat: ChatSample, target: TargetModel) -> list[int]:
    last_reply = max(i for i, message in enumerate(chat.messages) if message["role"] == "assistant")
    if last_reply == 0:
        return []
    rendered = target.tokenizer.apply_chat_template(
        list(chat.messages[:last_reply]),
        tools=list(chat.tools) if chat.tools else None,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
    )
    if not isinstance(rendered, Mapping):
        raise TypeError(f"the chat template returned {type(rendered).__name__}, not token ids")
    return list(rendered["input_ids"])


def stop_token_ids(target: TargetModel) -> set[int]:
    """End of sequence, and the template's end-of-turn when it is one token."""
    tokenizer = target.tokenizer
    stops = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    end_of_turn = tokenizer.encode(assistant_markers(tokenizer).end_of_turn, add_special_tokens=False)
    if len(end_of_turn) == 1:
        stops.add(end_of_turn[0])
    return stops


def position_acceptance(accepted: list[int], draft_steps: int) -> list[float]:
    rates = []
    for position in range(1, draft_steps + 1):
        reached = sum(count >= position - 1 for count in accepted)
        rates.append(sum(count >= position for count in accepted) / reached if reached else 0.0)
    return rates


@torch.no_grad()
def locate_mismatch(
    target: TargetModel, index: int, prompt: list[int], greedy: list[int], other: list[int]
) -> Mismatch:
    position = next(
        (i for i, (a, b) in enumerate(zip(greedy, other, strict=False)) if a != b),
        min(len(greedy), len(other)),
    )
    context = torch.tensor([prompt + greedy[:position]], device=target.device)
    best = target.model(input_ids=context).logits[0, -1].float().topk(2).values
    return Mismatch(
        prompt=index,
        position=position,
        greedy_token=greedy[position] if position < len(greedy) else -1,
        speculative_token=other[position] if position < len(other) else -1,
        top2_logit_margin=float(best[0] - best[1]),
    )


def summarize(
    checkpoint: Path,
    greedy: list[Decoded],
    speculative: list[Decoded],
    *,
    held_out: int,
    draft_steps: int,
    max_new_tokens: int,
    simulated: float | None,
    mismatches: list[Mismatch],
) -> EvalReport:
    accepted = [count for decoded in speculative for count in decoded.accepted]
    generated = sum(len(decoded.tokens) for decoded in speculative)
    spec_seconds, greedy_seconds = (sum(d.seconds for d in runs) for runs in (speculative, greedy))
    mismatched = [mismatch.prompt for mismatch in mismatches]
    return EvalReport(
        checkpoint=str(checkpoint),
        prompts=len(speculative),
        held_out_conversations=held_out,
        draft_steps=draft_steps,
        max_new_tokens=max_new_tokens,
        acceptance_length=mean(accepted) if accepted else 0.0,
        tokens_per_target_forward=generated / sum(d.target_forwards for d in speculative),
        position_acceptance=position_acceptance(accepted, draft_steps),
        identical_to_greedy=not mismatched,
        mismatched_prompts=mismatched,
        mismatches=mismatches,
        generated_tokens=generated,
        speculative_seconds=spec_seconds,
        greedy_seconds=greedy_seconds,
        speedup=greedy_seconds / spec_seconds,
        simulated_acceptance_length=simulated,
    )


def evaluate_run(
    run: SpecForgeRun,
    checkpoint: Path,
    *,
    prompts: int | None = None,
    draft_steps: int | None = None,
    max_new_tokens: int = 64,
    device: torch.device | None = None,
) -> EvalReport:
    """``prompts`` held-out conversations (all of them when None) decoded both ways with the draft."""
    count = check_eval_prompts(run, prompts)
    if max_new_tokens < 1:
        raise ValueError("--max-new-tokens must be at least 1")
    steps = draft_steps or run.spec.training.ttt_length
    folder = resolve_checkpoint(checkpoint)
    context = ParallelContext(rank=0, world_size=1, device=device or torch.device("cpu"))
    # The source file, not a regenerated one: its prompts are the same, and the draft's vocabulary
    # comes from the checkpoint.
    data = load_run_data(run, context, dataset=source_dataset(run))
    draft = build_draft(run, data)
    reports = load_checkpoint(folder, draft).get("reports", [])[-SIMULATED_OVER_LAST_STEPS:]
    simulated = mean(report["acceptance_length"] for report in reports) if reports else None
    stops = stop_token_ids(data.target)
    greedy, speculative, mismatches = [], [], []
    for index, prompt in enumerate(eval_prompts(run, data.target, count, room=max_new_tokens + steps + 1)):
        greedy.append(greedy_decode(data.target, prompt, max_new_tokens=max_new_tokens, stop_ids=stops))
        speculative.append(
            speculative_decode(
                data.target,
                ChainDrafter(draft),
                prompt,
                draft_steps=steps,
                max_new_tokens=max_new_tokens,
                stop_ids=stops,
            )
        )
        if greedy[-1].tokens != speculative[-1].tokens:
            mismatches.append(
                locate_mismatch(data.target, index, prompt, greedy[-1].tokens, speculative[-1].tokens)
            )
    return summarize(
        folder,
        greedy,
        speculative,
        held_out=run.spec.dataset.held_out_conversations,
        draft_steps=steps,
        max_new_tokens=max_new_tokens,
        simulated=simulated,
        mismatches=mismatches,
    )


def format_report(report: EvalReport) -> str:
    simulated = (
        "n/a" if report.simulated_acceptance_length is None else f"{report.simulated_acceptance_length:.2f}"
    )
    rates = " ".join(f"{rate:.2f}" for rate in report.position_acceptance)
    verdict = (
        "yes"
        if report.identical_to_greedy
        else "NO: "
        + "; ".join(
            f"prompt {m.prompt} at token {m.position} ({m.greedy_token} vs {m.speculative_token}, "
            f"target's top-2 margin {m.top2_logit_margin:.3g})"
            for m in report.mismatches
        )
    )
    return "\n".join(
        [
            f"checkpoint                {report.checkpoint}",
            f"prompts x new tokens      {report.prompts} of {report.held_out_conversations} held-out x <= "
            f"{report.max_new_tokens} ({report.generated_tokens} generated)",
            f"draft steps               {report.draft_steps}",
            f"acceptance length         {report.acceptance_length:.2f} real, {simulated} simulated in training",
            f"acceptance by position    {rates}",
            f"tokens per target forward {report.tokens_per_target_forward:.2f} (greedy: 1.00)",
            f"wall-clock speed-up       {report.speedup:.2f}x ({report.greedy_seconds:.2f} s greedy, "
            f"{report.speculative_seconds:.2f} s speculative)",
            f"identical to greedy       {verdict}",
        ]
    )
