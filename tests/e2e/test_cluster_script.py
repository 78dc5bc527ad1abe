"""hack/cluster.sh and the image helpers as the test session relies on them: presence checks answer right
every time against a real containerd, and an `up` that fails says which component and leaves nothing."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from e2e.conftest import HACK_DIR, cluster_bin_dir

pytestmark = [pytest.mark.e2e]

NODE_IMAGES = (
    "localhost/specforge-k8s/pause:1",
    "localhost/specforge-k8s/debian-python:bookworm",
    "docker.io/library/redis:7.2-alpine",
)

PRESENCE_CALLS = r"""
set -euo pipefail
HACK_DIR={hack} CLUSTER_DIR={cluster}
source {hack}/lib/cluster-env.sh
source {hack}/lib/real-node.sh
wrong=0
for _ in $(seq {rounds}); do
  for image in {present}; do image_present "$image" || wrong=$((wrong + 1)); done
  ! image_present localhost/specforge-k8s/absent:1 || wrong=$((wrong + 1))
done
echo "$wrong"
"""


@pytest.mark.realnode
@pytest.mark.slow
def test_image_presence_answers_right_every_time_on_the_real_node(
    images_on_node: None, local_control_plane: bool, tmp_path: Path
) -> None:
    """Several hundred calls of image_present against the node's containerd holding the project's images
    (pause, base, redis, operator, trainer): every one answers right; then `images.sh --import-only`, which
    decides by the config digest containerd reports, finds every image up to date each time."""
    if not local_control_plane:
        pytest.skip("the node's containerd is hack/cluster.sh's only on the local control plane")
    script = PRESENCE_CALLS.format(
        hack=HACK_DIR, cluster=tmp_path / "cluster", rounds=60, present=" ".join(NODE_IMAGES)
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0", f"{result.stdout.strip()} of 240 calls answered wrong"
    for _ in range(3):
        imported = subprocess.run(
            [str(HACK_DIR / "images.sh"), "--import-only"], capture_output=True, text=True, timeout=600
        )
        assert imported.returncode == 0, imported.stderr[-3000:]
        assert imported.stdout.count("import: up to date") == 4, imported.stdout


def _cache_with_a_broken_training_operator(cache: Path) -> None:
    """A cache root whose binaries are the built ones, except a training-operator that exits at once."""
    bin_dir = cluster_bin_dir()
    key_dir = cache / "specforge-k8s" / bin_dir.parent.name
    (key_dir / "bin").mkdir(parents=True)
    for binary in bin_dir.iterdir():
        (key_dir / "bin" / binary.name).symlink_to(binary)
    (key_dir / "manifests").symlink_to(bin_dir.parent / "manifests")
    for other in bin_dir.parent.parent.glob("jobset-*"):
        (cache / "specforge-k8s" / other.name).symlink_to(other)
    broken = key_dir / "bin" / "training-operator"
    broken.unlink()
    broken.write_text(
        "#!/bin/sh\necho 'training-operator: cannot start (injected by the test)' >&2\nexit 3\n"
    )
    broken.chmod(0o755)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(f"{cmdline.parent.name}: {args[:200]}")
    return found


@pytest.mark.slow
def test_failed_up_names_the_component_and_its_log_and_stops_everything(
    local_control_plane: bool, tmp_path: Path
) -> None:
    if not local_control_plane:
        pytest.skip("brings up a private local control plane")
    cache, state = tmp_path / "cache", tmp_path / "state"
    _cache_with_a_broken_training_operator(cache)
    name = f"upfail-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(cache),
        "SPECFORGE_STATE_DIR": str(state),
        "SPECFORGE_CLUSTER_NAME": name,
        "SPECFORGE_REAL_NODE": "0",
    }
    env.pop("KUBECONFIG", None)
    result = subprocess.run(
        [str(HACK_DIR / "cluster.sh"), "up"], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cluster '{name}' did not come up: training-operator failed"), last
    log = Path(last.split("log: ", 1)[1].split(";", 1)[0])
    assert log.is_file() and "cannot start (injected by the test)" in log.read_text(), last
    assert not (state / "kwok" / "clusters" / name).exists()
    assert _processes_mentioning(str(state)) == []
