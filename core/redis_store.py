"""The one way product code reaches Redis: one client (django-redis' pooled connection) and one key builder.

Every key Folio writes starts with `folio:` (core/keys.py), so a shared Redis can host other tenants and an
operator can find (or flush) everything of ours by that prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django_redis import get_redis_connection
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from core.keys import KEY_PREFIX, redis_key

logger = logging.getLogger(__name__)
T = TypeVar("T")

# KEY_PREFIX and redis_key live in core/keys.py (settings use them too); apps import them from here.
__all__ = ["KEY_PREFIX", "REDIS_DOWN", "claims_take", "redis_client", "redis_key", "redis_retrying", "release_if_held",
           "release_if_held_lua"]

# Redis restarting or failing over (refused connections, timeouts, "LOADING" while it reads its
# append-only file): worth waiting for where what is counted lives there.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


def redis_client(alias: str = "default") -> Redis:
    """The pooled client of the CACHES entry `alias` (one pool per process, shared with Django's cache)."""
    return get_redis_connection(alias)


def redis_retrying(call: Callable[[], T], *, seconds: float, what: str = "redis call") -> T:
    """`call()`, retried through a Redis outage for at most `seconds` (backoff 0.2 s doubling to 5 s,
    jittered); the last error is raised when Redis stays down longer. Only for idempotent calls."""
    retrying = Retrying(
        retry=retry_if_exception_type(REDIS_DOWN),
        stop=stop_after_delay(max(seconds, 0.0)),
        wait=wait_exponential_jitter(multiplier=0.2, max=5.0, jitter=0.2),
        reraise=True,
        before_sleep=lambda state: logger.warning(
            "%s: Redis unavailable (%s), retrying", what, state.outcome.exception() if state.outcome else "?"),
    )
    return retrying(call)


def release_if_held_lua(key: str, value: str) -> str:
    """release_if_held as a statement of a Lua script, on the script's `key` and `value` (e.g. "KEYS[2]",
    "ARGV[2]"), setting the script's `local released` to 1 when it deleted: for a script that releases a claim
    in the same command as what the holder writes last."""
    return f"if redis.call('GET', {key}) == {value} then released = redis.call('DEL', {key}) end"


_RELEASE_IF_HELD = f"local released = 0 {release_if_held_lua('KEYS[1]', 'ARGV[1]')} return released"


def release_if_held(*, key: str, value: str | bytes, client: Redis | None = None) -> bool:
    """Delete `key` only while it still holds `value` (compare-and-delete: never frees another holder's claim)."""
    return bool((client or redis_client()).eval(_RELEASE_IF_HELD, 1, key, value))


def claims_take(*, ids: list[int], key: Callable[[int], str], seconds: int) -> list[int]:
    """The ids nobody claimed in the last `seconds`, now claimed by us (one SET NX each, one round trip):
    the debounce before queueing work, so a burst of requests for the same thing queues it once."""
    pipe = redis_client().pipeline(transaction=False)
    for item in ids:
        pipe.set(key(item), 1, nx=True, ex=seconds)
    return [item for item, won in zip(ids, pipe.execute(), strict=True) if won]
