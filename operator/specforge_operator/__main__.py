"""``python -m specforge_operator [kopf run options]``: run the operator with its handlers loaded.

Defaults to ``--standalone`` (no kopf peering CRDs needed; run one replica); pass ``--peering NAME``
to opt into peering instead.
"""

from __future__ import annotations

import sys

import kopf.cli


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(arg in ("--standalone", "-P") or arg.startswith("--peering") for arg in args):
        args.append("--standalone")
    kopf.cli.main(["run", "--module", "specforge_operator.handlers", *args])


if __name__ == "__main__":
    main()
