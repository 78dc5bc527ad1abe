"""The Redis the operator renders, run as rendered: the trainer's strict store accepts it and an ack
survives ``kill -9`` of it, with and without persistence."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from _support.control_plane import make_ref
from specforge_api import parse_run_manifest
from specforge_operator.render.store import REDIS_CONFIG_KEY, managed_redis_manifests, redis_auth_secret
from specforge_trainer.control_plane import RedisMetadataStore

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PASSWORD = "s3cret"


def rendered_redis_options(example: str, secret_dir: Path) -> list[str]:
    """The rendered container's redis-server options, with the config file its Secret would mount
    (written to ``secret_dir``) and without the port and directory (the test server's own)."""
    manifest = yaml.safe_load((EXAMPLES / example).read_text())
    manifest["metadata"].update(namespace="default", uid="uid-1", generation=1)
    run = parse_run_manifest(manifest)
    managed = run.spec.metadata_store.managed
    assert managed is not None, f"{example} should use a managed Redis"
    (deployment,) = [
        m for m in managed_redis_manifests(run, managed, released=False) if m["kind"] == "Deployment"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["redis-server"]
    args = list(container["args"])
    if args[0].endswith(f"/{REDIS_CONFIG_KEY}"):  # the Secret's config file, as the pod mounts it
        config = redis_auth_secret(run, PASSWORD)["data"][REDIS_CONFIG_KEY]
        (secret_dir / REDIS_CONFIG_KEY).write_bytes(base64.b64decode(config))
        args[0] = str(secret_dir / REDIS_CONFIG_KEY)
    for option in ("--port", "--dir"):  # the local server's own (LocalRedisServer keeps them)
        at = args.index(option)
        args = args[:at] + args[at + 2 :]
    return args


@pytest.mark.parametrize("example", ["disaggregated.yaml", "dataflow-colocated.yaml"])
def test_the_rendered_redis_keeps_an_acked_sample_through_kill_9(example, redis_server_factory, tmp_path):
    server = redis_server_factory(config_args=rendered_redis_options(example, tmp_path), password=PASSWORD)
    # strict (the default): construction refuses a server that could lose acks
    store = RedisMetadataStore(server.url, run_id="run-a")
    store.commit_samples([make_ref(i) for i in range(64)])
    leased = store.claim_named("rank0", [f"s{i:05d}" for i in range(64)], lease_timeout_s=30)
    assert len(leased) == 64
    store.record_train_ack([r.sample_id for r in leased], global_step=1, optimizer_durable=True)
    store.close()

    server.kill()
    server.start()
    reopened = RedisMetadataStore(server.url, run_id="run-a")
    assert reopened.committed_count() == 64 and reopened.acked_count() == 64
    assert reopened.durable_marker().global_step == 1
