"""Provider pacing shared by every process on every machine, kept in Redis.

- A token bucket per provider (requests per second, with a small burst), refilled by Redis server
  time inside one Lua script, so clocks of the workers never matter and two workers can never take
  the same token. A provider that charges credits per symbol against a per-minute allowance (Twelve
  Data) gets a sliding window of 60 s instead: a bucket big enough for a whole batch would let a
  second batch's worth through within the same minute.
- A daily quota per provider (UTC day by Redis server time): an attempt is counted before it is
  made, so a 25-calls/day key is never exceeded, whatever fails.
- A circuit breaker per provider: open after repeated transient failures, one half-open probe after
  a cool-down, closed again by a success.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings

from core.events import EventKind, EventLevel, event_record
from core.redis_store import redis_client, redis_key
from prices.providers.base import ProviderError, QuotaExhaustedError, TransientError

_TOKEN_BUCKET = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local wait_ms = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait_ms = math.ceil((cost - tokens) / rate * 1000)
end
redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', key, math.ceil(capacity / rate * 1000) + 1000)
return wait_ms
"""

_CREDIT_WINDOW = """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - 60)
local spent = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local used = 0
for i = 1, #spent, 2 do used = used + tonumber(string.match(spent[i], '^(%d+):')) end
if used + cost <= limit then
  redis.call('ZADD', key, now, cost .. ':' .. now .. ':' .. redis.call('INCR', key .. ':n'))
  redis.call('EXPIRE', key, 120)
  redis.call('EXPIRE', key .. ':n', 120)
  return 0
end
for i = 1, #spent, 2 do
  used = used - tonumber(string.match(spent[i], '^(%d+):'))
  if used + cost <= limit then return math.ceil((tonumber(spent[i + 1]) + 60 - now) * 1000) end
end
return 60000
"""

_DAILY_QUOTA = """
local prefix = KEYS[1]
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
local key = prefix .. ':' .. day
local used = redis.call('INCRBY', key, cost)
if used == cost then redis.call('EXPIRE', key, 172800) end
if used > limit then
  redis.call('DECRBY', key, cost)
  return -1
end
return limit - used
"""

_QUOTA_EXHAUST = """
local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
redis.call('SET', KEYS[1] .. ':' .. day, ARGV[1], 'EX', 172800)
return 0
"""

_QUOTA_LEFT = """
local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
return tonumber(redis.call('GET', KEYS[1] .. ':' .. day) or '0')
"""


class RateLimitTimeout(TransientError):
    """The bucket did not free a token within the caller's deadline."""


class CircuitOpenError(ProviderError):
    """The provider failed repeatedly; calls are refused until the cool-down's probe succeeds."""


def _key(*parts: str) -> str:
    return redis_key("provider", *parts)


@dataclass(frozen=True)
class ProviderLimits:
    requests_per_second: float
    burst: int
    daily_quota: int | None
    max_symbols_per_request: int
    credits_per_symbol: bool = False

    def cost(self, symbols: int) -> int:
        """Tokens (and quota) one request for `symbols` symbols uses."""
        return max(1, symbols) if self.credits_per_symbol else 1


def provider_limits(name: str, *, requests_per_second: float, daily_quota: int | None,
                    max_symbols_per_request: int, credits_per_symbol: bool = False) -> ProviderLimits:
    """A provider's own limits, overridden by settings (`<NAME>_REQUESTS_PER_SECOND`, …)."""
    override = settings.PROVIDER_LIMITS.get(name, {})
    rate = float(override.get("requests_per_second") or requests_per_second)
    batch_size = int(override.get("batch_size") or max_symbols_per_request)
    # A burst of about one second's worth (at least 1) keeps the long-run rate honest; with
    # per-symbol credits it must hold a whole batch, or a full batch could never be sent.
    default_burst = max(1, int(rate), batch_size if credits_per_symbol else 1)
    return ProviderLimits(
        requests_per_second=rate,
        burst=int(override.get("burst") or default_burst),
        daily_quota=override.get("daily_quota") or daily_quota,
        max_symbols_per_request=batch_size,
        credits_per_symbol=credits_per_symbol,
    )


class TokenBucket:
    def __init__(self, provider: str, limits: ProviderLimits) -> None:
        self.key = _key(provider, "bucket")
        self.limits = limits
        self._script = redis_client().register_script(_TOKEN_BUCKET)

    @staticmethod
    def of(provider: str, limits: ProviderLimits) -> TokenBucket:
        """The pacing a provider's limits call for: a credit window when it charges per symbol."""
        return CreditWindow(provider, limits) if limits.credits_per_symbol else TokenBucket(provider, limits)

    def try_acquire(self, cost: int = 1) -> float:
        """Take `cost` tokens: 0 when granted, else the seconds to wait before asking again."""
        wait_ms = self._script(keys=[self.key], args=[self.limits.requests_per_second, self.limits.burst, cost])
        return int(wait_ms) / 1000

    def acquire(self, *, timeout: float, cost: int = 1) -> float:
        """Block until granted; returns the seconds waited. RateLimitTimeout past `timeout`."""
        started = time.monotonic()
        while True:
            wait = self.try_acquire(cost)
            if wait == 0:
                return time.monotonic() - started
            if time.monotonic() + wait - started > timeout:
                raise RateLimitTimeout(f"no token from {self.key} within {timeout:.1f}s")
            time.sleep(wait)


class CreditWindow(TokenBucket):
    """At most a minute's credits (requests_per_second × 60) spent in any 60 s, whatever minute the provider
    counts by: 8 credits now and 2 more 15 s later are 10 in the provider's minute, which a bucket holding a
    whole batch of 8 allowed."""

    def __init__(self, provider: str, limits: ProviderLimits) -> None:
        self.key = _key(provider, "credits")
        self.limits = limits
        self.per_minute = max(1, round(limits.requests_per_second * 60))
        self._script = redis_client().register_script(_CREDIT_WINDOW)

    def try_acquire(self, cost: int = 1) -> float:
        wait_ms = self._script(keys=[self.key], args=[self.per_minute, min(cost, self.per_minute)])
        return int(wait_ms) / 1000


# Stands for "no limit" in the quota scripts: a provider without a daily quota still has its day marked spent
# when it says so (Stooq's "Exceeded the daily hits limit").
_UNLIMITED = 2**50


class DailyQuota:
    def __init__(self, provider: str, limit: int | None) -> None:
        self.prefix = _key(provider, "quota")
        self.limit = limit
        client = redis_client()
        self._consume = client.register_script(_DAILY_QUOTA)
        self._exhaust = client.register_script(_QUOTA_EXHAUST)
        self._used = client.register_script(_QUOTA_LEFT)

    def consume(self, cost: int = 1) -> int | None:
        """Count a request (or its credits) against today's budget; QuotaExhaustedError past it (or once the
        provider said the day's budget is spent). None for a provider without a quota."""
        left = int(self._consume(keys=[self.prefix], args=[self.limit or _UNLIMITED, cost]))
        if left < 0:
            raise QuotaExhaustedError(f"daily quota of {self.limit} used up" if self.limit is not None
                                      else "the provider said today's requests are used up")
        return left if self.limit is not None else None

    def exhaust(self) -> None:
        """The provider says the budget is spent (it counts differently, or declares no quota): believe it until
        tomorrow."""
        self._exhaust(keys=[self.prefix], args=[self.limit or _UNLIMITED])

    def used(self) -> int:
        return int(self._used(keys=[self.prefix]))

    def spent(self) -> bool:
        """Today's budget is used up, or the provider said so: asked before an attempt waits for its token."""
        return self.used() >= (self.limit or _UNLIMITED)


def circuits_not_closed(providers: Iterable[str]) -> list[str]:
    """Those of `providers` whose circuit is open or half-open (CircuitBreaker.state is not "closed"), sorted:
    one round trip for all of them (a circuit that is not closed is one with an `opened_at`)."""
    names = sorted(set(providers))
    if not names:
        return []
    pipe = redis_client().pipeline(transaction=False)
    for name in names:
        pipe.hget(_key(name, "circuit"), "opened_at")
    return [name for name, opened_at in zip(names, pipe.execute(), strict=True) if opened_at is not None]


class CircuitBreaker:
    def __init__(self, provider: str, *, threshold: int | None = None, cooldown: float | None = None) -> None:
        self.provider = provider
        self.key = _key(provider, "circuit")
        self.probe_key = _key(provider, "circuit-probe")
        self.threshold = threshold or settings.CIRCUIT_FAILURE_THRESHOLD
        self.cooldown = cooldown or settings.CIRCUIT_COOLDOWN_SECONDS
        self.client = redis_client()

    def _now(self) -> float:
        seconds, micros = self.client.time()
        return seconds + micros / 1_000_000

    def state(self) -> str:
        opened_at = self.client.hget(self.key, "opened_at")
        if opened_at is None:
            return "closed"
        return "half-open" if self._now() - float(opened_at) >= self.cooldown else "open"

    def allow(self) -> None:
        """Pass when closed; when open, let exactly one probe through after the cool-down."""
        opened_at = self.client.hget(self.key, "opened_at")
        if opened_at is None:
            return
        if self._now() - float(opened_at) >= self.cooldown and self.client.set(
            self.probe_key, 1, nx=True, ex=max(1, int(self.cooldown))
        ):
            return
        raise CircuitOpenError(f"{self.key} is open after repeated failures")

    def record_success(self) -> None:
        pipe = self.client.pipeline()
        pipe.hget(self.key, "opened_at")
        pipe.delete(self.key, self.probe_key)
        was_open, _ = pipe.execute()
        if was_open is not None:
            event_record(kind=EventKind.CIRCUIT_CLOSED, message=f"{self.provider}: circuit closed, calls resume",
                         provider=self.provider)

    def record_failure(self) -> None:
        pipe = self.client.pipeline()
        pipe.hincrby(self.key, "failures", 1)
        pipe.expire(self.key, 86400)
        pipe.hget(self.key, "opened_at")
        failures, _, opened_at = pipe.execute()
        if failures >= self.threshold:
            # (Re)open from now: a failed half-open probe restarts the cool-down.
            self.client.hset(self.key, "opened_at", repr(self._now()))
            self.client.delete(self.probe_key)
            if opened_at is None:
                event_record(kind=EventKind.CIRCUIT_OPENED, level=EventLevel.ERROR,
                             message=f"{self.provider}: circuit opened after {failures} failures in a row; "
                                     f"calls paused for {self.cooldown:.0f} s",
                             provider=self.provider, failures=failures)
