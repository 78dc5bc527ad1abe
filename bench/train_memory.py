"""Peak memory and time of one draft training step at Llama-3.1-8B draft shapes, against the floor.

One optimizer step (forward of the ``ttt_length`` unroll, backward, gradient clipping, AdamW step,
with the optimizer state allocated) runs in a fresh child process per variant; its peak resident
memory above the process's baseline after ``import torch`` is the figure (``ru_maxrss``, so
everything the step holds at its high-water mark counts). Beside it, the analytical floor:

* weights: trainable fp32 weights + their gradients + AdamW's two moments (16 bytes per
  parameter), the frozen bf16 target embedding the draft keeps;
* the batch: fp32 auxiliary features and bf16 full-vocabulary target logits (a bf16 target);
* one TTT unroll's activations that backward must keep, per token and step: the inputs of every
  linear layer (2H for q/k/v, H for o_proj, H for the MLP input, 3I for gate/up/down, H for the
  head), the rotated q/k/v (H + 2 * kv_heads * head_dim), three norms' inputs (3H) and the
  draft-vocabulary log-probabilities (V_draft), all fp32.

``--compare-old`` also runs the objective and draft as they were before attention went through
``scaled_dot_product_attention`` (from git revision ``OLD_REVISION``): fp32 (B, heads, T, T)
scores kept for every step, full-vocabulary target logits copied per step, rotary fixed at step 0.
At the default (full) shapes that variant needs far more memory than a 24 GiB machine has; use
``--seq-len 512`` for the side-by-side.

Usage: python bench/train_memory.py [--seq-len 2048] [--ttt-length 7] [--compare-old]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import types
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_REVISION = "f252276"  # the last revision with the materialised-scores attention
GIB = 2**30


@dataclass(frozen=True)
class Shapes:
    hidden: int = 4096
    heads: int = 32
    kv_heads: int = 8
    head_dim: int = 128
    intermediate: int = 14336
    vocab: int = 128256
    draft_vocab: int = 32000
    seq_len: int = 2048
    batch: int = 1
    ttt_length: int = 7

    def trainable_parameters(self) -> int:
        h, kv = self.hidden, self.kv_heads * self.head_dim
        attention = 2 * h * (self.heads * self.head_dim + 2 * kv) + self.heads * self.head_dim * h
        return 3 * h * h + attention + 3 * h * self.intermediate + h * self.draft_vocab + 4 * h

    def floor_bytes(self) -> dict[str, float]:
        h, tokens = self.hidden, self.batch * self.seq_len
        per_token_step = (
            9 * h + 2 * self.kv_heads * self.head_dim + 3 * self.intermediate + self.draft_vocab
        ) * 4
        return {
            "weights+grads+adam": self.trainable_parameters() * 16,
            "frozen embedding": self.vocab * h * 2,
            "batch": tokens * (3 * h * 4 + self.vocab * 2),
            "activations": tokens * self.ttt_length * per_token_step,
        }


def _old_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """The pre-SDPA draft and objective, loaded from git under private module names."""
    modules = []
    for name, path in (
        ("old_draft", "trainer/specforge_trainer/models/draft.py"),
        ("old_objective", "trainer/specforge_trainer/objective.py"),
    ):
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{OLD_REVISION}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        source = source.replace("from specforge_trainer.models.draft import", "from old_draft import")
        module = types.ModuleType(name)
        sys.modules[name] = module
        exec(compile(source, f"{OLD_REVISION}:{path}", "exec"), module.__dict__)
        modules.append(module)
    return modules[0], modules[1]


def child(variant: str, shapes: Shapes) -> dict[str, float]:
    import torch

    torch.manual_seed(0)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if variant == "old":
        draft_module, objective_module = _old_modules()
        extra: dict[str, object] = {}
    else:
        from specforge_trainer.models import draft as draft_module
        from specforge_trainer.train import objective as objective_module

        extra = {"num_key_value_heads": shapes.kv_heads, "head_dim": shapes.head_dim}
    from specforge_trainer.models.draft_vocab import DraftVocab

    config = draft_module.DraftConfig(
        hidden_size=shapes.hidden,
        intermediate_size=shapes.intermediate,
        num_attention_heads=shapes.heads,
        target_vocab_size=shapes.vocab,
        draft_vocab_size=shapes.draft_vocab,
        **extra,
    )
    chosen = torch.arange(shapes.draft_vocab) * (shapes.vocab // shapes.draft_vocab)
    t2d = torch.zeros(shapes.vocab, dtype=torch.bool)
    t2d[chosen] = True
    vocab = DraftVocab(t2d=t2d, d2t=chosen - torch.arange(shapes.draft_vocab))
    embedding = torch.nn.Embedding(shapes.vocab, shapes.hidden, dtype=torch.bfloat16)
    draft = draft_module.Eagle3DraftModel(config, embedding, vocab)
    del embedding
    b, t = shapes.batch, shapes.seq_len
    batch = objective_module.Eagle3Batch(
        input_ids=torch.randint(0, shapes.vocab, (b, t)),
        attention_mask=torch.ones(b, t, dtype=torch.long),
        loss_mask=torch.ones(b, t, dtype=torch.long),
        aux_hidden_states=torch.randn(b, t, 3 * shapes.hidden),
        target_logits=torch.randn(b, t, shapes.vocab, dtype=torch.bfloat16),
    )
    parameters = [p for p in draft.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)
    started = time.perf_counter()
    output = objective_module.eagle3_objective(draft, batch, shapes.ttt_length)
    output.loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 0.5)
    optimizer.step()
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"peak_bytes": peak - baseline, "step_s": elapsed, "loss": float(output.loss)}


def run_child(variant: str, shapes: Shapes) -> dict[str, float] | str:
    command = [sys.executable, "-P", __file__, "--child", variant, "--shapes", json.dumps(asdict(shapes))]
    # -P: keep bench/ off sys.path (a script there could shadow a module of the same name)
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        killed = result.returncode in (-9, 137)
        return "killed (out of memory)" if killed else result.stderr.strip().splitlines()[-1]
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-len", type=int, default=Shapes.seq_len)
    parser.add_argument("--ttt-length", type=int, default=Shapes.ttt_length)
    parser.add_argument("--compare-old", action="store_true", help="also run the pre-SDPA objective")
    parser.add_argument("--child", choices=["new", "old"], help=argparse.SUPPRESS)
    parser.add_argument("--shapes", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Shapes(**json.loads(args.shapes)))))
        return
    shapes = Shapes(seq_len=args.seq_len, ttt_length=args.ttt_length)
    floor = shapes.floor_bytes()
    floor_total = sum(floor.values())
    print("shapes: " + ", ".join(f"{k}={v}" for k, v in asdict(shapes).items()))
    print(f"trainable parameters: {shapes.trainable_parameters() / 1e6:.1f} M")
    print("analytical floor: " + ", ".join(f"{k} {v / GIB:.2f}" for k, v in floor.items()) + " GiB")
    print(f"analytical floor total: {floor_total / GIB:.2f} GiB")
    variants = ["new", "old"] if args.compare_old else ["new"]
    print(f"{'variant':<8} {'peak GiB':>9} {'floor GiB':>10} {'peak/floor':>11} {'step s':>8} {'loss':>9}")
    for variant in variants:
        # The old draft had full multi-head attention (kv_heads = heads): its own, larger floor.
        own = shapes if variant == "new" else replace(shapes, kv_heads=shapes.heads)
        own_floor = sum(own.floor_bytes().values())
        measured = run_child(variant, shapes)
        if isinstance(measured, str):
            print(f"{variant:<8} {measured}")
            continue
        peak = measured["peak_bytes"]
        print(
            f"{variant:<8} {peak / GIB:9.2f} {own_floor / GIB:10.2f} {peak / own_floor:11.2f} "
            f"{measured['step_s']:8.1f} {measured['loss']:9.4f}"
        )
    print("loss: new averages over all B*T positions (upstream's scale), old over trained positions")


if __name__ == "__main__":
    main()
