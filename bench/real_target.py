"""A draft for a real pretrained model, measured by real speculative decoding on prompts it never saw.

The target is SmolLM2-135M-Instruct (``targetModel.builtin: smollm2-135m-instruct``), the data the
bundled ``smol-chats`` (requests of five kinds answered by that target itself), the last
``--held-out`` conversations set apart. The run is the demo's manifest (``examples/smollm2.yaml``) with
the training budget given here, so the figures are what ``make demo`` reaches given more time. It
prints the held-out real acceptance length beside training's simulated one, acceptance by draft
position, tokens per target forward and the CPU wall-clock speed-up against plain greedy decoding of
the same target, side by side in one run, and the time each part took.

    python bench/real_target.py [--epochs 3] [--max-steps N] [--prompts 16] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "smollm2.yaml"


def manifest(args: argparse.Namespace, folder: Path) -> Path:
    document = yaml.safe_load(EXAMPLE.read_text())
    spec = document["spec"]
    spec["training"]["epochs"] = args.epochs
    spec["training"].pop("maxSteps", None)
    if args.max_steps:
        spec["training"]["maxSteps"] = args.max_steps
    spec["evaluation"]["prompts"] = args.prompts
    if args.interval:
        spec["training"]["checkpointInterval"] = args.interval
        spec["evaluation"]["intervalSteps"] = args.interval
    path = folder / "bench-smollm2.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--prompts", type=int, default=16, help="held-out prompts decoded")
    parser.add_argument("--interval", type=int, help="also measure every N steps and keep the best")
    parser.add_argument("--out", type=Path, help="run directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "run"
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "specforge_trainer.cli", "run", str(manifest(args, Path(scratch))),
             "--out", str(out)],
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        wall = time.monotonic() - started
        if result.returncode != 0:
            print(result.stderr[-4000:], file=sys.stderr)
            return result.returncode
        report = json.loads((out / "evaluation.json").read_text())
        steps = sum(1 for _ in (out / "metrics.jsonl").open())
    positions = " ".join(f"{rate:.2f}" for rate in report["position_acceptance"])
    print(f"SmolLM2-135M-Instruct, smol-chats, {steps} steps, {wall / 60:.1f} min in all (this machine)")
    print(f"checkpoint                      {Path(report['checkpoint']).name} "
          f"(best of {report['checkpoints_compared']} measured)")  # fmt: skip
    print(f"held-out prompts x new tokens   {report['prompts']} x {report['max_new_tokens']}")
    print(
        f"acceptance length (real)        {report['acceptance_length']:.2f} at {report['draft_steps']} draft steps"
    )
    simulated = report["simulated_acceptance_length"]
    print(f"acceptance length (simulated)   {'n/a' if simulated is None else f'{simulated:.2f}'}")
    print(f"acceptance by draft position    {positions}")
    print(f"tokens per target forward       {report['tokens_per_target_forward']:.2f}")
    print(
        f"CPU speed-up over greedy        {report['speedup']:.2f}x "
        f"({report['greedy_seconds']:.1f} s greedy, {report['speculative_seconds']:.1f} s speculative)"
    )
    print(f"identical to greedy decoding    {report['identical_to_greedy']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
