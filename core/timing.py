"""Latency histograms in Redis: cheap to record (pipelined HINCRBYs, one per field however many
samples are flushed together), percentiles on read.

Each series (an endpoint, a provider) keeps a histogram per 5-minute window with fixed,
log-spaced bucket bounds; a percentile is interpolated linearly within the bucket where the
cumulative count reaches it (observations taken as spread evenly between the bucket's bounds), so it
moves smoothly instead of jumping from one bucket edge to the next. Windows expire after two hours,
so memory stays flat. No database write per request. Each series also keeps its all-time bucket
counts (one hash, never expiring), which /metrics exports as a Prometheus histogram: held in Redis,
they add up every host's observations, unlike per-process multiprocess files.
"""

from __future__ import annotations

import time
from bisect import bisect_left

from core.redis_store import redis_client, redis_key

# Upper bounds in milliseconds; the last bucket takes everything slower.
BUCKETS_MS = (1, 2, 3, 5, 7.5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 400, 500, 750,
              1000, 1500, 2000, 3000, 5000, 7500, 10000, 15000, 30000, 60000, float("inf"))
WINDOW_SECONDS = 300
RETENTION_SECONDS = 2 * 3600
SERIES_KEY = redis_key("timing", "series")


def _window(now: float) -> int:
    return int(now // WINDOW_SECONDS) * WINDOW_SECONDS


def _key(series: str, window: int) -> str:
    return redis_key("timing", series, window)


def _totals_key(series: str) -> str:
    return redis_key("timing", series, "total")


def timing_record(*, series: str, seconds: float, counters: dict[str, int] | None = None,
                  now: float | None = None, client=None, pipe=None) -> None:
    """Count one observation of `seconds` (and optional counters such as status classes). With
    `pipe`, the commands are only queued on it (the caller executes many at once)."""
    own = pipe is None
    if own:
        pipe = (client or redis_client()).pipeline(transaction=False)
    timing_record_many(series=series, samples=[(seconds, counters or {})], now=now, pipe=pipe)
    if own:
        pipe.execute()


def timing_record_many(*, series: str, samples: list[tuple[float, dict[str, int]]], pipe,
                       now: float | None = None) -> None:
    """Queue on `pipe` many observations of one series: one HINCRBY per distinct field, however many
    samples (a busy web process flushes hundreds a second). Bucket counts, count and sum also go to
    the series' all-time hash, which /metrics exports."""
    fields: dict[str, int] = {}
    counters_only: set[str] = set()
    for seconds, counters in samples:
        counters_only.update(counters)
        for name, value in ((f"h{bisect_left(BUCKETS_MS, seconds * 1000)}", 1), ("count", 1),
                            ("sum_us", int(seconds * 1_000_000)), *counters.items()):
            fields[name] = fields.get(name, 0) + value
    key, totals = _key(series, _window(now or time.time())), _totals_key(series)
    for name, value in fields.items():
        if name not in counters_only:
            pipe.hincrby(totals, name, value)
        pipe.hincrby(key, name, value)
    pipe.expire(key, RETENTION_SECONDS)
    pipe.sadd(SERIES_KEY, series)


def timing_counters(*, series: str, minutes: int = 60, now: float | None = None, client=None) -> dict[str, int]:
    """All counts of a series summed over the last `minutes` (bucket counts as h0, h1, …)."""
    client = client or redis_client()
    now = now or time.time()
    first = _window(now - minutes * 60 + WINDOW_SECONDS)
    pipe = client.pipeline(transaction=False)
    for window in range(first, _window(now) + 1, WINDOW_SECONDS):
        pipe.hgetall(_key(series, window))
    totals: dict[str, int] = {}
    for raw in pipe.execute():
        for field, value in raw.items():
            name = field.decode()
            totals[name] = totals.get(name, 0) + int(value)
    return totals


def timing_histogram(*, series: str, client=None) -> tuple[list[tuple[str, int]], float]:
    """The series' all-time histogram as Prometheus wants it: cumulative (upper bound in seconds, count)
    pairs ending with "+Inf", and the sum of observations in seconds."""
    stored = (client or redis_client()).hgetall(_totals_key(series))
    raw = {field.decode(): int(value) for field, value in stored.items()}
    buckets, seen = [], 0
    for index, bound in enumerate(BUCKETS_MS):
        seen += raw.get(f"h{index}", 0)
        buckets.append(("+Inf" if bound == float("inf") else repr(bound / 1000), seen))
    return buckets, raw.get("sum_us", 0) / 1_000_000


def percentiles_from(totals: dict[str, int]) -> dict[str, float | int | None]:
    count = totals.get("count", 0)
    result: dict[str, float | int | None] = {"count": count, "mean_ms": None, "p50_ms": None, "p95_ms": None,
                                             "p99_ms": None}
    if not count:
        return result
    result["mean_ms"] = round(totals.get("sum_us", 0) / count / 1000, 2)
    for name, q in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        needed = q * count
        seen = 0
        for index, bound in enumerate(BUCKETS_MS):
            in_bucket = totals.get(f"h{index}", 0)
            if in_bucket and seen + in_bucket >= needed:
                lower = BUCKETS_MS[index - 1] if index else 0
                # Beyond the last bound nothing says how slow: its lower bound is the honest floor.
                upper = bound if bound != float("inf") else lower
                result[name] = round(lower + (upper - lower) * (needed - seen) / in_bucket, 1)
                break
            seen += in_bucket
    return result


def timing_summary(*, series: str, minutes: int = 60, now: float | None = None) -> dict:
    totals = timing_counters(series=series, minutes=minutes, now=now)
    counters = {k: v for k, v in totals.items() if not _is_bucket(k) and k not in ("count", "sum_us")}
    return {**percentiles_from(totals), "counters": counters}


def _is_bucket(field: str) -> bool:
    return field.startswith("h") and field[1:].isdigit()


def timing_series(*, prefix: str = "") -> list[str]:
    return sorted(s.decode() for s in redis_client().smembers(SERIES_KEY)
                  if s.decode().startswith(prefix))
