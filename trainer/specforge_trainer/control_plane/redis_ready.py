"""Wait, within a bound, for a run's Redis metadata store to answer before a process starts working.

Pods of a run start in any order, and a local run starts ``redis-server`` next to its workers, so a
store that is not up *yet* is normal for a few seconds. One that stays down is bad input: after
``timeout_s`` the error names the URL (password redacted) and how long we waited, instead of a hang
or a traceback from deep inside a training step.
"""

from __future__ import annotations

import time

from specforge_trainer.control_plane import StoreUnavailableError

DEFAULT_STORE_WAIT_S = 30.0


def wait_for_redis_store(url: str, run_id: str, timeout_s: float = DEFAULT_STORE_WAIT_S) -> None:
    from specforge_trainer.control_plane.stores.redis import RedisMetadataStore, redact

    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        try:
            RedisMetadataStore(url, run_id=run_id, connect_timeout_s=max(0.1, min(2.0, remaining))).close()
            return
        except StoreUnavailableError as error:
            if time.monotonic() >= deadline:
                raise StoreUnavailableError(
                    f"metadata store {redact(url)} did not answer within {timeout_s:g}s: {error}"
                ) from error
        time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
