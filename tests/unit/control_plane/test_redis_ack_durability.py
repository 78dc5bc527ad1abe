"""How the strict Redis store makes an ack durable, per server configuration (pure policy; the
configurations this machine's redis-server can run are covered against it in integration tests)."""

from __future__ import annotations

import pytest
from specforge_trainer.control_plane.stores.redis import AckDurability, ack_durability


@pytest.mark.parametrize(
    ("version", "aof", "fsync", "expected"),
    [
        ("7.0.15", True, "always", AckDurability.FSYNC_BEFORE_REPLY),
        ("7.2.4", True, "always", AckDurability.FSYNC_BEFORE_REPLY),  # WAITAOF would add nothing
        ("8.2.1", True, "always", AckDurability.FSYNC_BEFORE_REPLY),
        ("7.2.4", True, "everysec", AckDurability.WAIT_AOF),
        ("7.4.0", True, None, AckDurability.WAIT_AOF),  # CONFIG disabled: WAITAOF is safe either way
        ("10.0.0", True, "no", AckDurability.WAIT_AOF),
        ("7.0.15", True, "everysec", AckDurability.REFUSED),
        ("7.0.15", True, None, AckDurability.REFUSED),  # cannot tell, cannot wait
        ("8.2.1", False, "always", AckDurability.REFUSED),  # no AOF: a restart forgets every ack
        ("7.2.0-rc1", True, "everysec", AckDurability.WAIT_AOF),
    ],
)
def test_ack_durability_policy(version, aof, fsync, expected):
    assert ack_durability(version, aof, fsync) is expected
