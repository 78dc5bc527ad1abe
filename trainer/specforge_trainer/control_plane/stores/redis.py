"""RedisMetadataStore: the store of Kubernetes runs, shared by producer and trainer pods.

Every multi-key change is one Lua script (:mod:`.redis_lua`), so an ack, its global step and the
optimizer-durable marker land in one atomic write. Batches are pipelined. Keys are namespaced by
run id under one hash tag. Connect and command timeouts are bounded; an unreachable or misconfigured
server is a clear error at construction, not a hang later.

**Ack durability.** An ack this store returned must survive ``kill -9`` of Redis; otherwise a
restart would retrain the samples acked in the last second. ``durability="strict"`` (the default)
therefore requires AOF and either ``appendfsync always``, where Redis fsyncs before it replies (what
the operator's managed Redis runs), or Redis >= 7.2 with another policy, where each ack waits on
``WAITAOF 1 0`` — under ``everysec`` for the once-a-second fsync, so this logs a warning. Anything
weaker is a :class:`StoreConfigError` at construction (see :func:`ack_durability`).
``durability="relaxed"`` (or ``SPECFORGE_REDIS_DURABILITY=relaxed``) accepts an everysec AOF's window
of up to ~1 s of acks.

Transient connection errors are retried within ``reconnect_timeout_s`` (a Redis restart is survived).
Every script is safe to repeat: commits and acks are idempotent and a claim carries a token so a
retried claim returns the same refs instead of leasing more.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, InvalidResponse, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from specforge_api.pod_contract import Env, PodEnv, Tunables

from ..records import SampleRef
from . import redis_lua
from .base import (
    DurableMarker,
    MetadataStore,
    StoreAuthError,
    StoreConfigError,
    StoreUnavailableError,
    UnknownSampleError,
)

PASSWORD_ENV = Env.METADATA_PASSWORD
DURABILITY_ENV = Tunables.REDIS_DURABILITY
_BATCH = 1000  # refs per script call: bounded Lua stack, pipelined across calls
_T = TypeVar("_T")
_Call = tuple[str, Sequence[str], Sequence[Any]]  # a script name (or a plain command), its keys, its args
log = logging.getLogger(__name__)


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisMetadataStore(MetadataStore):
    def __init__(
        self,
        url: str,
        *,
        run_id: str = "default",
        password: str | None = None,
        durability: Literal["strict", "relaxed"] | None = None,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 10.0,
        reconnect_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.run_id = run_id
        self._reconnect_timeout_s = reconnect_timeout_s
        env = PodEnv.from_environ()
        durability = durability or env.redis_durability or "strict"  # type: ignore[assignment]
        if durability not in ("strict", "relaxed"):
            raise ValueError(f"durability must be 'strict' or 'relaxed', got {durability!r}")
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(
                f"metadata store URL must start with redis://, rediss:// or unix://, got {redact(url)!r}"
            )
        if password is None and urlsplit(url).password is None:
            password = env.metadata_password
        self._has_password = password is not None or urlsplit(url).password is not None
        self._client = redis.Redis.from_url(
            url,
            password=password,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=command_timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._prefix = f"specforge:{{{run_id}}}:"
        self._keys = {name: self._prefix + name for name in _KEY_NAMES}
        self._scripts = {
            name: self._client.register_script(getattr(redis_lua, name.upper())) for name in _SCRIPTS
        }
        self._wait_aof = self._check_server(durability)

    # -- connection ------------------------------------------------------------------------------
    def _check_server(self, durability: str) -> bool:
        """Ping, and decide how acks are made durable; True means ack with WAITAOF."""
        try:
            info = self._client.info()
        except AuthenticationError as err:
            if not self._has_password:
                raise StoreAuthError(
                    f"Redis metadata store at {redact(self.url)} needs a password: name the Secret that "
                    f"holds it in metadataStore.external.passwordSecretRef (outside a cluster: ${PASSWORD_ENV})"
                ) from err
            raise StoreAuthError(
                f"Redis metadata store at {redact(self.url)} refused the password: {err}"
            ) from err
        except (RedisConnectionError, RedisTimeoutError) as err:
            raise StoreUnavailableError(
                f"Redis metadata store at {redact(self.url)} did not answer: {err} "
                "(is the address right and the server up?)"
            ) from err
        except InvalidResponse as err:
            raise StoreUnavailableError(
                f"the server at {redact(self.url)} does not speak the Redis protocol: {err}"
            ) from err
        if durability == "relaxed":
            return False
        try:
            fsync = self._client.config_get("appendfsync").get("appendfsync")
        except ResponseError:  # CONFIG is often disabled on hosted Redis
            fsync = None
        version = str(info.get("redis_version", "0"))
        how = ack_durability(version, bool(info.get("aof_enabled")), fsync)
        if how is AckDurability.REFUSED:
            raise StoreConfigError(
                f"Redis {version} at {redact(self.url)} could lose acked samples to a kill -9 "
                f"(appendonly={'yes' if info.get('aof_enabled') else 'no'}, appendfsync={fsync or 'unknown'}), "
                "and they would be retrained after a restart. Run it with --appendonly yes "
                f"--appendfsync always (or Redis >= 7.2), or accept the risk with {DURABILITY_ENV}=relaxed."
            )
        if how is AckDurability.WAIT_AOF and fsync is not None:
            log.warning(
                "Redis at %s has appendfsync=%s: every ack waits on WAITAOF for an AOF fsync, which this "
                "policy runs about once a second; run it with --appendfsync always for fast durable acks",
                redact(self.url),
                fsync,
            )
        return how is AckDurability.WAIT_AOF

    def _retrying(self, op: Callable[[], Any]) -> Any:
        deadline = time.monotonic() + self._reconnect_timeout_s
        delay = 0.05
        while True:
            try:
                return op()
            except (RedisConnectionError, RedisTimeoutError) as err:
                if isinstance(err, AuthenticationError) or time.monotonic() + delay > deadline:
                    raise StoreUnavailableError(
                        f"Redis metadata store at {redact(self.url)} unavailable for "
                        f"{self._reconnect_timeout_s:.0f}s: {err}"
                    ) from err
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return _raise_first(self._pipelined([(script, keys, args)]))[0]

    def _run_batched(self, script: str, keys: Sequence[str], batches: Iterable[Sequence[Any]]) -> list[Any]:
        return _raise_first(self._pipelined([(script, keys, args) for args in batches]))

    def _pipelined(self, calls: Sequence[_Call]) -> list[Any]:
        """Scripts (by name) and plain commands in one round trip; errors come back as results.

        Scripts go by EVALSHA: redis-py's script objects would first ask SCRIPT EXISTS, a second round
        trip per pipeline. A server that lost its script cache (restarted) gets them loaded and the
        whole pipeline again, which every script here is safe to repeat.
        """

        def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for name, keys, args in calls:
                if name in self._scripts:
                    pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
                else:
                    pipe.execute_command(name, *args)  # type: ignore[no-untyped-call]
            return list(pipe.execute(raise_on_error=False))

        if not calls:
            return []
        results: list[Any] = self._retrying(run)
        if any(isinstance(r, NoScriptError) for r in results):
            self._retrying(self._load_scripts)
            results = self._retrying(run)
        return results

    def _load_scripts(self) -> None:
        for script in self._scripts.values():
            self._client.script_load(script.script)

    def _k(self, *names: str) -> list[str]:
        return [self._keys[n] for n in names]

    def close(self) -> None:
        self._client.close()

    # -- commit ----------------------------------------------------------------------------------
    def commit_samples(self, refs: Sequence[SampleRef]) -> list[bool]:
        batches = (
            [v for ref in chunk for v in (ref.sample_id, ref.to_store_json())] for chunk in _chunks(refs)
        )
        results = self._run_batched("commit", self._k("refs", "seq", "pending"), batches)
        return [bool(flag) for batch in results for flag in batch]

    def is_committed(self, sample_id: str) -> bool:
        return bool(self._retrying(lambda: self._client.hexists(self._keys["refs"], sample_id)))

    def get_committed(self, sample_id: str) -> SampleRef | None:
        text = self._retrying(lambda: self._client.hget(self._keys["refs"], sample_id))
        return _stored_refs((text,))[0] if text else None

    def committed_count(self) -> int:
        return int(self._retrying(lambda: self._client.hlen(self._keys["refs"])))

    def all_committed_ids(self) -> list[str]:
        return list(self._run("committed_ids", self._k("refs"), []))

    # -- ack -------------------------------------------------------------------------------------
    def record_train_ack(
        self, sample_ids: Sequence[str], *, global_step: int, optimizer_durable: bool
    ) -> None:
        self._ack_pipeline(sample_ids, global_step, optimizer_durable)

    def ack_and_claim(
        self,
        trainer_id: str,
        sample_ids: Sequence[str],
        *,
        global_step: int,
        optimizer_durable: bool,
        claim: Sequence[str],
        lease_timeout_s: float,
    ) -> list[SampleRef]:
        claims = self._claim_calls(trainer_id, claim, lease_timeout_s)
        return self._ack_pipeline(sample_ids, global_step, optimizer_durable, trainer_id, claims)

    def _ack_pipeline(
        self,
        sample_ids: Sequence[str],
        global_step: int,
        optimizer_durable: bool,
        holder: str = "",
        claims: Sequence[_Call] = (),
    ) -> list[SampleRef]:
        """``holder``'s claims, the ack scripts, then WAITAOF when acks are made durable that way: one
        round trip, and with ``appendfsync always`` one fsync, since Redis fsyncs once per batch of
        commands it reads together. A failed ack gives back whatever the claims leased.

        The claims go first so that the holder's next refs are leased before its acked ones are
        released: the lease index then never empties between steps, and Redis does not tear it down
        and rebuild it every step.
        """
        ack_keys = self._k("refs", "acked", "owner", "marker", "pending")
        acks: list[_Call] = [
            ("ack", ack_keys, [global_step, int(optimizer_durable), *chunk])
            for chunk in _chunks(list(sample_ids))
        ]
        if self._wait_aof and acks:
            acks.append(("WAITAOF", (), (1, 0, 5000)))
        results = self._pipelined([*claims, *acks])
        leased = _stored_refs(
            text for batch in results[: len(claims)] if not isinstance(batch, Exception) for text in batch
        )
        if any(isinstance(r, Exception) for r in results):
            if leased:
                self._release(holder, [ref.sample_id for ref in leased])
            try:
                _raise_first(results)
            except ResponseError as err:
                if "UNKNOWN_SAMPLE" in str(err):
                    raise UnknownSampleError(
                        f"cannot ack sample ids that were never committed: {err}"
                    ) from err
                raise
        if self._wait_aof and acks:
            local, _ = results[-1]
            if int(local) < 1:
                raise StoreUnavailableError(f"Redis at {redact(self.url)} did not fsync the ack within 5 s")
        return leased

    def is_acked(self, sample_id: str) -> bool:
        return bool(self._retrying(lambda: self._client.hexists(self._keys["acked"], sample_id)))

    def acked_count(self) -> int:
        return int(self._retrying(lambda: self._client.hlen(self._keys["acked"])))

    def acked_steps(self) -> dict[str, int]:
        raw = self._retrying(lambda: self._client.hgetall(self._keys["acked"]))
        return {sid: int(step) for sid, step in raw.items()}

    def durable_marker(self) -> DurableMarker | None:
        raw = self._retrying(lambda: self._client.hgetall(self._keys["marker"]))
        if not raw:
            return None
        return DurableMarker(
            int(raw["global_step"]), raw["optimizer_durable"] == "1", int(raw["acked_count"])
        )

    def unack(self, sample_ids: Iterable[str]) -> int:
        results = self._run_batched(
            "unack", self._k("acked", "pending", "refs", "marker"), _chunks(list(sample_ids))
        )
        return sum(int(n) for n in results)

    # -- shared leasing ------------------------------------------------------------------------
    def claim_named(
        self, trainer_id: str, sample_ids: Sequence[str], lease_timeout_s: float
    ) -> list[SampleRef]:
        calls = self._claim_calls(trainer_id, sample_ids, lease_timeout_s)
        results = _raise_first(self._pipelined(calls))
        return _stored_refs(text for batch in results for text in batch)

    def _claim_calls(self, trainer_id: str, sample_ids: Sequence[str], lease_timeout_s: float) -> list[_Call]:
        """The scripts that claim ``sample_ids`` for ``trainer_id``. Never none: a claim of nothing is
        still the holder's heartbeat."""
        head = [trainer_id, int(lease_timeout_s * 1000)]
        keys = self._k("holders", "pending", "owner", "refs")
        return [("claim_named", keys, [*head, *chunk]) for chunk in _chunks(list(sample_ids))] or [
            ("claim_named", keys, head)
        ]

    def _release(self, trainer_id: str, sample_ids: Sequence[str]) -> None:
        """Return ``trainer_id``'s leases of ``sample_ids`` to pending (a failed ack's claims)."""
        self._run_batched(
            "release",
            self._k("owner", "pending", "refs"),
            ([trainer_id, *chunk] for chunk in _chunks(list(sample_ids))),
        )

    def clear_leases(self, trainer_id: str) -> int:
        return int(self._run("clear", self._k("owner", "pending", "refs", "holders"), [trainer_id]))

    def pending_count(self) -> int:
        return int(self._retrying(lambda: self._client.zcard(self._keys["pending"])))

    def leased_count(self) -> int:
        entries = int(self._retrying(lambda: self._client.hlen(self._keys["owner"])))
        return max(0, entries - 1)  # less the layout entry, there since the first claim


_KEY_NAMES = ("refs", "seq", "pending", "acked", "owner", "holders", "marker")
_SCRIPTS = ("commit", "claim_named", "ack", "unack", "release", "clear", "committed_ids")


class AckDurability(enum.Enum):
    """How a strict store makes each ack durable on a given server."""

    FSYNC_BEFORE_REPLY = "appendfsync always: Redis fsyncs the AOF before it replies"
    WAIT_AOF = "WAITAOF 1 0 after each ack"
    REFUSED = "no way to make an ack survive kill -9"


def ack_durability(version: str, aof_enabled: bool, appendfsync: str | None) -> AckDurability:
    """The strict policy: ``appendfsync`` None means the server would not say (CONFIG disabled).

    ``appendfsync always`` needs nothing per ack. Otherwise Redis >= 7.2 can wait for the fsync with
    WAITAOF, which under ``everysec`` means waiting for the once-a-second fsync.
    """
    if not aof_enabled:
        return AckDurability.REFUSED
    if appendfsync == "always":
        return AckDurability.FSYNC_BEFORE_REPLY
    major_minor = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return AckDurability.WAIT_AOF if major_minor >= (7, 2) else AckDurability.REFUSED


def _raise_first(results: list[Any]) -> list[Any]:
    """``results`` of a pipeline, raising the first error among them."""
    failed = next((r for r in results if isinstance(r, Exception)), None)
    if failed is not None:
        raise failed
    return results


def _stored_refs(values: Iterable[str]) -> list[SampleRef]:
    """Refs from their ``refs`` entries, ``<commit seq>|<ref JSON>``."""
    return SampleRef.many_from_store_json(value[value.index("|") + 1 :] for value in values)


def _chunks(items: Sequence[_T], size: int = _BATCH) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
