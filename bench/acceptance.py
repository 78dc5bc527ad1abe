"""Real versus simulated acceptance length: the demo's draft on the built-in random target, and on a tiny
target that has learned the bundled chats.

Training logs a *simulated* acceptance length (``a0 + a0*a1 + ...`` from per-position accuracy on the
training data, teacher-forced); ``specforge eval`` measures the real one by speculative decoding of the
target's own greedy answers. A target with random weights answers with text unlike its training data,
so its draft meets contexts it never saw; a target trained on the chats answers like the data. This
bench trains such a target (the built-in shapes, a language-model loss on every token, saved in bf16 as
a Hugging Face directory), then trains a draft for each target with the demo's recipe and evaluates it.
Both the target and the drafts learn only the run's training split: the prompts are the held-out
conversations (``spec.dataset.heldOutConversations``), which neither has seen.

    python bench/acceptance.py [--target-epochs 8] [--prompts 16] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from specforge_api import SpecForgeRun, load_run_manifest
from specforge_trainer.build import build_offline_trainer
from specforge_trainer.data.chat_jsonl import read_chat_jsonl
from specforge_trainer.data.held_out import split_held_out
from specforge_trainer.models.target import describe_target
from specforge_trainer.resources import builtin_dataset_path
from specforge_trainer.speculative.evaluation import EvalReport, evaluate_run
from specforge_trainer.train.distributed import ParallelContext
from transformers import LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "local-colocated.yaml"


def train_chat_target(
    out: Path, *, epochs: int, held_out: int, batch_size: int = 8, max_length: int = 128
) -> Path:
    """The built-in target's shapes, trained as a language model on chat-mini but its last ``held_out``
    conversations; saved as bf16."""
    description = describe_target(builtin="tiny-llama")
    tokenizer = description.tokenizer
    torch.manual_seed(0)
    model = LlamaForCausalLM(description.config)
    chats = split_held_out(read_chat_jsonl(builtin_dataset_path("chat-mini")).samples, held_out).training
    sequences = [
        torch.tensor(
            tokenizer.apply_chat_template(list(chat.messages), tokenize=True, return_dict=True)["input_ids"][
                :max_length
            ]
        )
        for chat in chats
    ]
    steps = epochs * (len(sequences) // batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps, pct_start=0.1)
    for _ in range(epochs):
        order = torch.randperm(len(sequences)).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = [sequences[i] for i in order[start : start + batch_size]]
            ids = torch.nn.utils.rnn.pad_sequence(
                batch, batch_first=True, padding_value=tokenizer.pad_token_id
            )
            mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(s) for s in batch], batch_first=True)
            loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    print(f"chat target: {steps} steps, last LM loss {loss.item():.3f}")
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def with_target(run: SpecForgeRun, path: Path) -> SpecForgeRun:
    target = run.spec.target_model.model_copy(update={"builtin": None, "path": str(path)})
    return run.model_copy(update={"spec": run.spec.model_copy(update={"target_model": target})})


def train_and_evaluate(run: SpecForgeRun, out: Path, prompts: int) -> EvalReport:
    cpu = ParallelContext(rank=0, world_size=1, device=torch.device("cpu"))
    build_offline_trainer(run, out_dir=out, feature_store_dir=out / "features", context=cpu).train()
    return evaluate_run(run, out, prompts=prompts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-epochs", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument(
        "--out", type=Path, help="keep targets, drafts and reports here (default: a temp dir)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="acceptance-"))
    run = load_run_manifest(EXAMPLE)
    started = time.perf_counter()
    chat_target = train_chat_target(
        out / "chat-target", epochs=args.target_epochs, held_out=run.spec.dataset.held_out_conversations
    )
    reports = {
        "built-in (random weights)": train_and_evaluate(run, out / "builtin", args.prompts),
        "trained on chat-mini (bf16)": train_and_evaluate(
            with_target(run, chat_target), out / "chat", args.prompts
        ),
    }
    (out / "reports.json").write_text(json.dumps({k: r.to_json() for k, r in reports.items()}, indent=2))
    print(f"\n{'target':30} {'simulated':>9} {'real':>6} {'tok/fwd':>7} {'speed-up':>8} lossless")
    for name, report in reports.items():
        print(
            f"{name:30} {report.simulated_acceptance_length or 0:9.2f} {report.acceptance_length:6.2f} "
            f"{report.tokens_per_target_forward:7.2f} {report.speedup:7.2f}x {report.identical_to_greedy}"
        )
    print(f"({time.perf_counter() - started:.0f} s; outputs in {out})")


if __name__ == "__main__":
    main()
