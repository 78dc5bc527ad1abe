"""The Redis the operator renders, run as rendered: the trainer's strict store accepts it and an ack
survives ``kill -9`` of it, with and without persistence."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from _support.control_plane import make_ref
from specforge_operator.api import parse_run_manifest
from specforge_operator.render.store import managed_redis_manifests
from specforge_trainer.control_plane import RedisMetadataStore
from specforge_trainer.local_redis import free_port

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PASSWORD = "s3cret"


def rendered_redis_args(example: str) -> list[str]:
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    manifest["metadata"].update(namespace="default", uid="uid-1", generation=1)
    run = parse_run_manifest(manifest)
    managed = run.spec.metadata_store.managed
    assert managed is not None, f"{example} should use a managed Redis"
    (deployment,) = [m for m in managed_redis_manifests(run, managed) if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return [*container["command"], *container["args"]]


class RenderedRedis:
    """redis-server started with the rendered command line; only the port, bind address, data
    directory (the pod's /data volume) and the password from its Secret are filled in."""

    def __init__(self, argv: list[str], data_dir: Path) -> None:
        self.port = free_port()
        argv = [a.replace("$(REDIS_PASSWORD)", PASSWORD) for a in argv]
        argv[argv.index("--port") + 1] = str(self.port)
        self.argv = [
            shutil.which(argv[0]) or argv[0],
            *argv[1:],
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
        ]
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RenderedRedis:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                RedisMetadataStore(self.url, durability="relaxed", connect_timeout_s=0.5).close()
                return self
            except Exception:
                time.sleep(0.05)
        raise TimeoutError(f"rendered redis-server did not answer: {self.argv}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture
def rendered_redis(tmp_path: Path) -> Iterator[list[RenderedRedis]]:
    servers: list[RenderedRedis] = []
    yield servers
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.kill()


@pytest.mark.parametrize("example", ["disaggregated.yaml", "dataflow-colocated.yaml"])
def test_the_rendered_redis_keeps_an_acked_sample_through_kill_9(example, tmp_path, rendered_redis):
    server = RenderedRedis(rendered_redis_args(example), tmp_path)
    rendered_redis.append(server)
    # strict (the default): construction refuses a server that could lose acks
    store = RedisMetadataStore(server.start().url, run_id="run-a")
    store.commit_samples([make_ref(i) for i in range(64)])
    leased = store.claim_leases("rank0", 64, lease_timeout_s=30)
    store.record_train_ack([r.sample_id for r in leased], global_step=1, optimizer_durable=True)
    store.close()

    server.kill()
    server.start()
    reopened = RedisMetadataStore(server.url, run_id="run-a")
    assert reopened.committed_count() == 64 and reopened.acked_count() == 64
    assert reopened.durable_marker().global_step == 1
