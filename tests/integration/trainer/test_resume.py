"""Kill a run with SIGKILL mid-way, run it again: it resumes from the last checkpoint and ends with
exactly the weights of a run that was never interrupted (deterministic algorithms on)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from integration.trainer.conftest import read_metrics
from safetensors.torch import load_file
from specforge_trainer.cli import main
from specforge_trainer.train.checkpoint import COMPLETE_FILE, WEIGHTS_FILE, latest_checkpoint

pytestmark = pytest.mark.slow
STEPS, INTERVAL = 60, 6
# The CLI in a child process with deterministic algorithms on, as the in-process reference has them.
CHILD = "import sys, torch; torch.use_deterministic_algorithms(True); from specforge_trainer.cli import main; sys.exit(main(sys.argv[1:]))"


def _start(manifest: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, "run", str(manifest), "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def _reference(manifest: Path, out: Path) -> None:
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        assert main(["run", str(manifest), "--out", str(out)]) == 0
    finally:
        torch.use_deterministic_algorithms(previous)


def _kill_once_saved(manifest: Path, out: Path, step: int) -> Path:
    """Run in a child, SIGKILL it as soon as the checkpoint of ``step`` is complete; the newest one."""
    process = _start(manifest, out)
    deadline = time.monotonic() + 300
    while not (out / f"epoch_0_step_{step}" / COMPLETE_FILE).is_file():
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()  # type: ignore[union-attr]
    assert process.returncode == -signal.SIGKILL
    interrupted_at = latest_checkpoint(out)
    assert interrupted_at is not None and not interrupted_at.name.endswith(f"_step_{STEPS}")
    return interrupted_at


def _resume_and_match(manifest: Path, out: Path, reference: Path) -> str:
    resumed = _start(manifest, out)
    _, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr.decode()
    assert "resumed at step" in stderr.decode()
    final = "epoch_2_step_60"  # 24 steps per epoch: the run crosses two epoch boundaries
    expected = load_file(str(reference / final / "model.safetensors"))
    after_resume = load_file(str(out / final / "model.safetensors"))
    assert expected.keys() == after_resume.keys()
    for name, tensor in expected.items():
        assert torch.equal(tensor, after_resume[name]), name
    assert [m["step"] for m in read_metrics(out)] == list(range(1, STEPS + 1))
    assert [m["loss"] for m in read_metrics(out)] == [m["loss"] for m in read_metrics(reference)]
    return stderr.decode()


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path: Path, make_manifest) -> None:
    _, manifest = make_manifest(epochs=3, maxSteps=STEPS, checkpointInterval=INTERVAL, keepCheckpoints=2)
    _reference(manifest, tmp_path / "reference")
    _kill_once_saved(manifest, tmp_path / "killed", 2 * INTERVAL)
    _resume_and_match(manifest, tmp_path / "killed", tmp_path / "reference")


def test_a_torn_newest_checkpoint_is_skipped_for_the_one_before(tmp_path: Path, make_manifest) -> None:
    _, manifest = make_manifest(epochs=3, maxSteps=STEPS, checkpointInterval=INTERVAL, keepCheckpoints=2)
    _reference(manifest, tmp_path / "reference")
    out = tmp_path / "torn"
    newest = _kill_once_saved(manifest, out, 3 * INTERVAL)
    weights = newest / WEIGHTS_FILE
    with weights.open("r+b") as torn:  # what a lost page cache leaves: the tail of the file missing
        torn.truncate(weights.stat().st_size // 2)
    stderr = _resume_and_match(manifest, out, tmp_path / "reference")
    assert f"checkpoint {newest}: {WEIGHTS_FILE} is" in stderr and "falling back" in stderr
