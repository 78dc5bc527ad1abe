"""No shell pipeline the project runs can fail because its reader stopped early (hack/lint_pipelines.py),
and the helpers that decide whether something is present answer right however much the producer writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO_ROOT / "hack"))
import lint_pipelines  # noqa: E402

EARLY_READERS = [
    'ctr images ls -q | grep -qxF "$1"',
    'kind get clusters | grep -qx "$CLUSTER" || kind create cluster',
    "ps aux | grep --quiet kubelet",
    "git log | grep -m1 fix",
    "buildah images --format '{{.Size}}' \"$image\" | head -n 1",
    "ctr images ls | awk 'NR > 1 { print $3; exit }'",
    "kubectl get pods | sed -n '2{p;q}'",
    "find . -name x | read -r first",
    "producer | \\\n  grep -q found",
    'x=$(ctr images ls | grep -q "$name" && echo yes)',
]
WHOLE_READERS = [
    'names=$(ctr images ls -q); grep -qxF "$1" <<<"$names"',
    "ps aux | grep -c kubelet",
    "buildah images | sed -n 1p",
    "ctr images ls | awk 'NR == 2 { print $3 }'",
    "test -f x || grep -q y file",
    "echo 'a | head -n 1'",
    "# producer | grep -q commented out",
    "cmd | sort | uniq -c",
]


@pytest.mark.parametrize("line", EARLY_READERS)
def test_lint_flags_a_reader_that_stops_early(tmp_path: Path, line: str) -> None:
    script = tmp_path / "bad.sh"
    script.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\n{line}\n")
    assert list(lint_pipelines.findings(script)), line


@pytest.mark.parametrize("line", WHOLE_READERS)
def test_lint_accepts_readers_that_consume_everything(tmp_path: Path, line: str) -> None:
    script = tmp_path / "good.sh"
    script.write_text(f"#!/usr/bin/env bash\nset -euo pipefail\n{line}\n")
    assert list(lint_pipelines.findings(script)) == []


def test_the_project_shell_files_have_no_early_reader() -> None:
    files = lint_pipelines.shell_files()
    names = {str(path.relative_to(REPO_ROOT)) for path in files}
    assert {"Makefile", ".ci/run", "hack/cluster.sh", "hack/lib/real-node.sh", "hack/images.sh"} <= names
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hack/lint_pipelines.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_flagged_shape_really_fails_under_pipefail() -> None:
    """Why the lint exists: a producer with more to write than a pipe holds dies of SIGPIPE once grep -q
    has its match, and pipefail reports the found line as a failure; the captured form does not."""
    racy = "set -o pipefail; seq 1 200000 | grep -qx 1"
    assert subprocess.run(["bash", "-c", racy]).returncode == 141
    safe = 'set -o pipefail; out=$(seq 1 200000); grep -qx 1 <<<"$out"'
    assert subprocess.run(["bash", "-c", safe]).returncode == 0


PRESENCE_STRESS = r"""
set -euo pipefail
HACK_DIR={hack} CLUSTER_DIR={cluster}
source {hack}/lib/cluster-env.sh
source {hack}/lib/real-node.sh
ctr() {{ seq -f 'docker.io/library/filler:%g' 1 20000; printf '%s\n' "$PAUSE_IMAGE" "$BASE_IMAGE"; }}
wrong=0
for _ in $(seq {calls}); do
  image_present "$PAUSE_IMAGE" || wrong=$((wrong + 1))
  image_present docker.io/library/filler:1 || wrong=$((wrong + 1))
  ! image_present docker.io/library/absent:1 || wrong=$((wrong + 1))
done
echo "$wrong"
"""


def test_image_present_answers_right_however_long_the_listing(tmp_path: Path) -> None:
    """A containerd listing far larger than a pipe buffer, the name sought at its start: the old
    `ctr ... | grep -qxF` failed almost every call this way. (The real-node e2e test repeats this
    against the node's own containerd.)"""
    script = PRESENCE_STRESS.format(hack=REPO_ROOT / "hack", cluster=tmp_path / "cluster", calls=100)
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"
