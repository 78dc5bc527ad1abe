"""Bad input for multi-process runs: an unreachable store, two runs on one Redis, a reused run id."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _support.multiprocess_runs import scheduled_ack_steps, specforge, write_dataset, write_manifest
from specforge_trainer.control_plane import RedisMetadataStore
from specforge_trainer.local.redis_server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]
CONVERSATIONS = 12


def test_unreachable_redis_is_a_clear_error_naming_the_url_after_a_bounded_wait(tmp_path: Path) -> None:
    _, manifest = write_manifest(tmp_path, "down", "disaggregated", write_dataset(tmp_path))
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {"SPECFORGE_METADATA_URL": url, "SPECFORGE_STORE_WAIT_S": "2"}
    for command in (
        ["produce", "--config", manifest],
        ["train", "--config", manifest, "--out", tmp_path / "o"],
    ):
        started = time.monotonic()
        done = specforge(*command, env=env, timeout_s=120)
        assert done.returncode == 2, done.stderr[-2000:]
        assert f"metadata store {url} did not answer within 2s" in done.stderr
        assert "Traceback" not in done.stderr
        assert time.monotonic() - started < 60


def test_two_runs_share_a_redis_without_seeing_each_other_and_a_reused_run_id_resumes(
    tmp_path: Path,
    redis_server,
) -> None:
    dataset = write_dataset(tmp_path, CONVERSATIONS)
    env = {"SPECFORGE_METADATA_URL": redis_server.url}
    runs = {
        name: write_manifest(tmp_path, name, "disaggregated", dataset, producers=1)
        for name in ("run-a", "run-b")
    }
    launched = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "specforge_trainer.cli",
                "run",
                str(manifest),
                "--out",
                str(tmp_path / name),
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, (_, manifest) in runs.items()
    ]
    assert [proc.wait(timeout=300) for proc in launched] == [0, 0]
    for name, (run, _) in runs.items():
        with RedisMetadataStore(redis_server.url, run_id=name) as store:
            expected = scheduled_ack_steps(run, CONVERSATIONS)
            assert store.acked_steps() == expected  # its own refs, all of them, none of the other run's
            assert store.committed_count() == len(expected)

    # The same run again, into the same store and output: it resumes (finds everything done), not starves.
    run, manifest = runs["run-a"]
    done = specforge("run", manifest, "--out", tmp_path / "run-a", env=env, timeout_s=300)
    assert done.returncode == 0, done.stderr[-3000:]
    producer_log = (tmp_path / "run-a" / "logs" / "producer-0.log").read_text().splitlines()
    already = len(scheduled_ack_steps(run, CONVERSATIONS))
    assert producer_log[-1].endswith(
        f"computed 0 features, committed 0 refs, {already} already committed, 0.0s paused"
    )
