"""ttlSecondsAfterFinished, table-driven."""

from __future__ import annotations

import pytest
from specforge_operator.policies.ttl import ttl_expired
from unit.operator.policies.builders import at

# (ttl, completion offset or None, now offset) → expired?
CASES = {
    "no ttl keeps the run": ((None, 0, 10_000), False),
    "not finished": ((0, None, 10_000), False),
    "ttl 0 deletes at once": ((0, 0, 0), True),
    "before the ttl": ((60, 0, 59), False),
    "at the ttl": ((60, 0, 60), True),
}


@pytest.mark.parametrize(("given", "expired"), CASES.values(), ids=CASES.keys())
def test_ttl_expired(given: tuple, expired: bool) -> None:
    ttl, completed, now = given
    assert (
        ttl_expired(
            ttl_seconds=ttl, completion_time=None if completed is None else at(completed), now=at(now)
        )
        is expired
    )
