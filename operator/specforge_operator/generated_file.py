"""The command line every generator of a checked-in file shares: write it, check it, or print it.

``--check`` is what ``make verify-*`` targets and drift tests run: it fails, naming the make target that
fixes it, when the committed file differs from what the generator produces now.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def generated_file_main(
    argv: list[str] | None, *, description: str, what: str, make_target: str, generate: Callable[[], str]
) -> int:
    parser = argparse.ArgumentParser(description=description)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--output", type=Path, help=f"write the {what} to this file")
    group.add_argument("--check", type=Path, help=f"fail when this file differs from the generated {what}")
    args = parser.parse_args(argv)
    generated = generate()
    if args.check:
        current = args.check.read_text() if args.check.exists() else ""
        if current != generated:
            print(f"{args.check} is stale: run `make {make_target}` and commit the result", file=sys.stderr)
            return 1
        return 0
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(generated)
    else:
        sys.stdout.write(generated)
    return 0
