#!/usr/bin/env python3
"""Fail on shell pipelines whose reader may stop before its producer has written everything.

Under ``set -o pipefail`` a pipeline's status is its last failing stage. When the reader exits early
(``grep -q`` at its first match, ``head``, an ``awk`` program that calls ``exit``, ``sed`` with ``q``,
``read``, ``true``), a producer that still has output to write dies of SIGPIPE (status 141), and the
pipeline fails although the reader found what it looked for: a race that depends on how much the
producer writes and how the scheduler interleaves them. The fix is to let the reader see the whole
input (``grep -x`` on a captured variable, ``sed -n 1p``, ``awk`` without ``exit``).

Usage: hack/lint_pipelines.py [FILE...]   (default: the project's shell files, Makefile and .ci/)
Prints ``file:line: reason`` for each finding and exits 1 when there is one.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

_GREP_EARLY_SHORT = set("qlLm")
_GREP_EARLY_LONG = ("--quiet", "--silent", "--max-count", "--files-with-matches", "--files-without-match")
_SED_QUIT = re.compile(r"(?:^|[;{}\s/0-9$])[qQ](?:\s*\d+)?\s*(?:$|[;}])")
_AWK_EXIT = re.compile(r"\bexit\b")
# Words that may precede the reader's command name without changing what reads the pipe.
_PREFIX_WORDS = {"command", "exec", "nice", "env", "builtin", "!"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def shell_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every file the project runs through a shell: hack/ scripts and libraries, .ci/, the Makefile."""
    files = {p for p in (root / "hack").rglob("*.sh")}
    files |= {p for p in (root / "hack").iterdir() if p.is_file() and _has_shell_shebang(p)}
    files |= {p for p in (root / ".ci").iterdir() if p.is_file()} if (root / ".ci").is_dir() else set()
    files.add(root / "Makefile")
    return sorted(p for p in files if p.is_file())


def _has_shell_shebang(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            first = handle.readline()
    except OSError:
        return False
    return first.startswith(b"#!") and (b"bash" in first or b"/sh" in first)


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, comments dropped, and each line's starting number."""
    start, parts = 0, []
    for number, raw in enumerate(text.splitlines(), 1):
        if not parts:
            start = number
        line = _strip_comment(raw)
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        yield start, " ".join(parts)
        parts = []
    if parts:
        yield start, " ".join(parts)


def _unquoted(text: str) -> Iterator[tuple[int, str]]:
    """Each character of ``text`` outside single and double quotes, with its offset."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        else:
            yield i, char


def _strip_comment(line: str) -> str:
    for i, char in _unquoted(line):
        if char == "#" and (i == 0 or line[i - 1] in " \t;("):
            return line[:i].rstrip()
    return line.rstrip()


def _pipe_positions(line: str) -> Iterator[int]:
    """Offsets just after each pipe ``|`` (not ``||``, not ``|&`` redirections) outside single quotes."""
    quote = ""
    i = 0
    while i < len(line):
        char = line[i]
        if quote == "'":
            if char == "'":
                quote = ""
        elif char == "'" and quote == "":
            quote = "'"
        elif char == "|":
            if line[i + 1 : i + 2] == "|":
                i += 2
                continue
            if line[i - 1 : i] != "|":
                yield i + 1
        i += 1


def _reader_words(segment: str) -> list[str]:
    """The words of the command that reads the pipe, up to the next command separator."""
    command = _until_separator(segment)
    try:
        words = shlex.split(command, comments=False, posix=True)
    except ValueError:  # an unterminated quote: the command goes on past this line
        words = command.split()
    while words and (words[0] in _PREFIX_WORDS or _ASSIGNMENT.match(words[0])):
        words.pop(0)
    return words


def _until_separator(segment: str) -> str:
    """``segment`` up to its first command separator (``|``, ``;``, ``&``, ``)``) outside quotes."""
    for i, char in _unquoted(segment):
        if char in "|;&)":
            return segment[:i]
    return segment


def early_exit_reason(words: list[str]) -> str | None:
    """Why a reader with these words may exit before reading all its input, or None."""
    if not words:
        return None
    name = words[0].rsplit("/", 1)[-1]
    args = words[1:]
    if name in ("grep", "egrep", "fgrep"):
        for arg in args:
            if arg == "--":
                break
            if arg.startswith("--") and arg.split("=", 1)[0] in _GREP_EARLY_LONG:
                return f"grep {arg} stops reading at its first match"
            if arg.startswith("-") and not arg.startswith("--") and _GREP_EARLY_SHORT & set(arg[1:]):
                return f"grep {arg} stops reading at its first match"
        return None
    if name == "head":
        return "head stops reading after the lines it prints"
    if name in ("awk", "gawk", "mawk"):
        program = next((a for a in args if not a.startswith("-")), "")
        return "an awk program that calls exit stops reading" if _AWK_EXIT.search(program) else None
    if name == "sed":
        scripts = [a for a in args if not a.startswith("-")][:1]
        scripts += [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-e", "--expression")]
        if any(_SED_QUIT.search(script) for script in scripts):
            return "sed's q command stops reading"
        return None
    if name in ("read", "true", ":", "false"):
        return f"{name} does not read its whole input"
    return None


def findings(path: Path) -> Iterator[str]:
    for number, line in logical_lines(path.read_text()):
        for offset in _pipe_positions(line):
            reason = early_exit_reason(_reader_words(line[offset:]))
            if reason:
                yield f"{path}:{number}: {reason}; under pipefail the producer can die of SIGPIPE (141)"


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or shell_files()
    found = [finding for path in paths for finding in findings(path)]
    for finding in found:
        print(finding)
    if found:
        print(
            f"{len(found)} pipeline(s) whose reader can stop early: capture the producer's output first "
            '(out=$(cmd); grep -q PAT <<<"$out") or use a reader that consumes everything (sed -n 1p)',
            file=sys.stderr,
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
