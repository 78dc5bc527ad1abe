"""The regeneration stage: the target answers every assistant turn, batched; an interrupted stage resumes
without answering a batch twice and writes the same bytes as an uninterrupted one; shards merge into that
same file; and a run with ``spec.dataset.regenerate`` trains on what its target wrote."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from _support.multiprocess_runs import specforge, write_dataset, write_manifest
from specforge_trainer.data.regenerate import parts_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REGENERATE = {"maxNewTokens": 12, "batchSize": 3}


def _manifest(tmp_path: Path, conversations: int = 10, **regenerate: object) -> Path:
    dataset = write_dataset(tmp_path, conversations=conversations)
    _, path = write_manifest(tmp_path, "regen", "local_colocated", dataset, epochs=1)
    document = yaml.safe_load(path.read_text())
    document["spec"]["dataset"]["regenerate"] = {**REGENERATE, **regenerate}
    path.write_text(yaml.safe_dump(document))
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_assistant_turn_is_the_targets_and_the_rest_is_kept(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    out = tmp_path / "regenerated.jsonl"
    result = specforge("regenerate", manifest, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    source = [json.loads(line) for line in (tmp_path / "chat-small.jsonl").read_text().splitlines()]
    regenerated = _lines(out)
    assert len(regenerated) == len(source)
    changed = 0
    for before, after in zip(source, regenerated, strict=True):
        turns = before.get("conversations") or before.get("messages")
        assert [t.get("role", t.get("from")) for t in turns] == [t["role"] for t in after["conversations"]]
        for old, new in zip(turns, after["conversations"], strict=True):
            if new["role"] == "assistant":
                changed += new["content"] != old.get("content", old.get("value"))
            else:
                assert new["content"] == old.get("content", old.get("value"))
    assert changed >= len(source)  # every conversation has at least one assistant turn
    again = specforge("regenerate", manifest, "--out", out)
    assert again.returncode == 0 and "0 answered now" in again.stdout


def test_a_killed_stage_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, conversations=14)
    reference = tmp_path / "uninterrupted.jsonl"
    assert specforge("regenerate", manifest, "--out", reference).returncode == 0
    rng = random.Random(int(os.environ.get("SPECFORGE_TEST_SEED", "7")))
    out = tmp_path / "interrupted.jsonl"
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(
            [sys.executable, "-m", "specforge_trainer.cli", "regenerate", str(manifest), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill it at a random moment once it has finished at least one more batch than before.
        before = len(list(parts_dir(out).glob("batch-*.jsonl"))) if parts_dir(out).is_dir() else 0
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if parts_dir(out).is_dir() and len(list(parts_dir(out).glob("batch-*.jsonl"))) > before:
                time.sleep(rng.uniform(0, 1.5))
                break
            time.sleep(0.05)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
        if out.is_file():
            break
    assert kills >= 1
    finished = specforge("regenerate", manifest, "--out", out)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert out.read_bytes() == reference.read_bytes()


def test_shards_merge_into_the_unsharded_file(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, conversations=10)
    whole = tmp_path / "whole.jsonl"
    assert specforge("regenerate", manifest, "--out", whole).returncode == 0
    sharded = tmp_path / "sharded.jsonl"
    first = specforge("regenerate", manifest, "--out", sharded, "--shard-index", "0", "--num-shards", "2")
    assert first.returncode == 0 and "not complete yet" in first.stdout
    second = specforge("regenerate", manifest, "--out", sharded, "--shard-index", "1", "--num-shards", "2")
    assert second.returncode == 0 and "written" in second.stdout
    assert sharded.read_bytes() == whole.read_bytes()


def test_a_run_that_regenerates_trains_on_what_its_target_wrote(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, conversations=8)
    out = tmp_path / "run"
    result = specforge("run", manifest, "--out", out)
    assert result.returncode == 0, result.stderr[-3000:]
    (regenerated,) = (out / "features" / "regenerated").glob("regen-*.jsonl")
    assert f"regenerated dataset: {regenerated}" in result.stderr
    direct = tmp_path / "direct.jsonl"
    assert specforge("regenerate", manifest, "--out", direct).returncode == 0
    assert regenerated.read_bytes() == direct.read_bytes()
    assert (out / "metrics.jsonl").read_text().strip()
