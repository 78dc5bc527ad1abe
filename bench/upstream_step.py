"""Our EAGLE3 training step beside upstream SpecForge's own, on the same shapes, weights and batches.

Upstream's step is its ``OnlineEagle3Model`` over its ``LlamaForCausalLMEagle3`` (the ``specforge==0.2.0``
wheel, as the parity test runs it: sdpa attention, its reference loss in place of the GPU-only Triton
kernel); ours is ``eagle3_objective`` over our draft. Both do forward, backward and an AdamW step on
the same batch, alternating in rounds so contention from other work hits them alike; the medians give
samples/s for each and their ratio. The default shapes are SmolLM2-135M-Instruct's draft (hidden 576,
9/3 heads of 64, intermediate 1536, vocabulary 49,152 with a 4,096-token draft vocabulary), sequence 256,
batch 4, TTT 7: the real target the README's recipe trains on.

    python bench/upstream_step.py [--steps 6] [--rounds 3] [--seq 256] [--batch 4] [--ttt 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _support.upstream_specforge import DraftShapes, paired_drafts, upstream_losses, upstream_specforge
from specforge_trainer.train.objective import Eagle3Batch, eagle3_objective

SMOLLM2 = DraftShapes(
    hidden=576, intermediate=1536, heads=9, kv_heads=3, head_dim=64, vocab=49152, draft_vocab=4096
)


def make_batch(shapes: DraftShapes, batch: int, length: int) -> Eagle3Batch:
    generator = torch.Generator().manual_seed(1)
    loss_mask = torch.zeros(batch, length, dtype=torch.long)
    loss_mask[:, length // 4 :] = 1  # the reply: the last three quarters, as in a short chat
    return Eagle3Batch(
        input_ids=torch.randint(0, shapes.vocab, (batch, length), generator=generator),
        attention_mask=torch.ones(batch, length, dtype=torch.long),
        loss_mask=loss_mask,
        aux_hidden_states=torch.randn(batch, length, 3 * shapes.hidden, generator=generator),
        target_logits=torch.randn(batch, length, shapes.vocab, generator=generator) * 4,
    )


def timed_steps(step: Callable[[], None], steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--ttt", type=int, default=7)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch = make_batch(SMOLLM2, args.batch, args.seq)
    with upstream_specforge() as upstream:
        ours, theirs = paired_drafts(upstream, SMOLLM2)
        ours_optimizer = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=1e-4)
        their_optimizer = torch.optim.AdamW([p for p in theirs.parameters() if p.requires_grad], lr=1e-4)

        def our_step() -> None:
            ours_optimizer.zero_grad()
            eagle3_objective(ours, batch, args.ttt).loss.backward()
            ours_optimizer.step()

        def their_step() -> None:
            their_optimizer.zero_grad()
            losses, _ = upstream_losses(upstream, theirs, batch, args.ttt)
            sum(0.8**i * loss for i, loss in enumerate(losses)).backward()
            their_optimizer.step()

        our_step(), their_step()  # warm-up: allocator, first-call overheads
        ours_times, their_times = [], []
        for _ in range(args.rounds):
            ours_times += timed_steps(our_step, args.steps)
            their_times += timed_steps(their_step, args.steps)
    ours_median, their_median = statistics.median(ours_times), statistics.median(their_times)
    print(
        f"EAGLE3 training step, SmolLM2-135M draft shapes, batch {args.batch} x seq {args.seq}, TTT {args.ttt}, "
        f"{args.threads} thread(s), {args.rounds} x {args.steps} steps each:"
    )
    print(f"  ours      {ours_median:7.3f} s/step  {args.batch / ours_median:6.2f} samples/s")
    print(f"  upstream  {their_median:7.3f} s/step  {args.batch / their_median:6.2f} samples/s")
    print(f"  ratio (our step time / upstream's): {ours_median / their_median:.3f}")


if __name__ == "__main__":
    main()
