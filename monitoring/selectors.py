"""What /monitoring and its API show: cache, Redis, price freshness, jobs, providers, queues,
workers, endpoint latencies and the events log. Reads Redis and a few cheap queries only."""

from __future__ import annotations

import time
from datetime import datetime
from functools import lru_cache

import redis
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from celery_app import app
from core.jobs import jobs_recent
from core.query_cache import cache_stats_get, cache_stats_history
from core.redis_store import redis_client, redis_key
from core.timing import timing_series, timing_summary
from monitoring.events import events_flush
from monitoring.models import MonitoringEvent
from monitoring.providers import provider_health
from prices.models import Instrument
from prices.providers import PROVIDER_CLASSES
from prices.providers.gateway import ProviderGate
from prices.providers.pacing import CircuitBreaker, DailyQuota
from prices.selectors import instruments_freshness_get

QUEUES = ("history", "prices", "charts", "default")
HEARTBEAT_KEY = redis_key("worker", "heartbeat")
# A worker that has not beaten for this long is reported down (beat asks every 30 s).
HEARTBEAT_MAX_AGE = 120


def redis_info_get() -> dict:
    info = redis_client().info()
    return {
        "used_memory": info.get("used_memory"),
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory": info.get("maxmemory"),
        "keys": sum(v.get("keys", 0) for k, v in info.items() if k.startswith("db") and isinstance(v, dict)),
        "evicted_keys": info.get("evicted_keys"),
        "expired_keys": info.get("expired_keys"),
        "keyspace_hits": info.get("keyspace_hits"),
        "keyspace_misses": info.get("keyspace_misses"),
        "connected_clients": info.get("connected_clients"),
        "uptime_seconds": info.get("uptime_in_seconds"),
        "version": info.get("redis_version"),
    }


def cache_overview_get(*, minutes: int = 60) -> dict:
    return {"namespaces": cache_stats_get(), "history": cache_stats_history(minutes=minutes),
            "redis": redis_info_get()}


def providers_overview_get(*, minutes: int = 60, now: datetime | None = None) -> list[dict]:
    """Every provider in use or configured (PRICE_PROVIDER, CRYPTO_PRICE_PROVIDER: a new instrument's, and the
    search's before anything is held): health, circuit, quota, and its instruments' freshness."""
    in_use = set(Instrument.objects.filter(active=True).values_list("provider", flat=True).distinct())
    configured = {settings.PRICE_PROVIDER, settings.CRYPTO_PRICE_PROVIDER}
    freshness = instruments_freshness_get(now=now or timezone.now())
    overview = []
    for name in sorted((in_use | configured) & set(PROVIDER_CLASSES)):
        limits = ProviderGate.limits_for(name)
        quota = DailyQuota(name, limits.daily_quota)
        quota_used = quota.used() if limits.daily_quota else None
        overview.append({
            "name": name,
            **provider_health(name=name, minutes=minutes),
            "circuit": CircuitBreaker(name).state(),
            "requests_per_second": limits.requests_per_second,
            "daily_quota": limits.daily_quota,
            "quota_used_today": quota_used,
            # 0 once the provider said its day is spent, a declared quota or not (Stooq's daily hits limit)
            "quota_left_today": 0 if quota.spent() else (
                None if quota_used is None else max(0, limits.daily_quota - quota_used)),
            "instruments": freshness.get(name, {"fresh": 0, "stale": 0, "unpriced": 0}),
        })
    for name in sorted(set(freshness) - {p["name"] for p in overview}):  # manual: no calls, but freshness
        overview.append({"name": name, "circuit": None, "instruments": freshness[name]})
    return overview


def jobs_overview_get(*, limit: int = 30) -> list[dict]:
    jobs = jobs_recent(limit=limit)
    for job in jobs:
        end = job["finished_at"] or time.time()
        job["duration_seconds"] = round(end - job["created_at"], 3) if job["created_at"] else None
    return jobs


@lru_cache(maxsize=4)
def _broker_client(url: str) -> redis.Redis:
    """The broker's Redis, where the queues are (a Redis of its own in a large deployment: docs/operations.md)."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def queues_and_workers_get() -> dict:
    pipe = _broker_client(settings.CELERY_BROKER_URL).pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(queue)
    lengths = dict(zip(QUEUES, pipe.execute(), strict=True))
    heartbeat = redis_client().get(HEARTBEAT_KEY)
    age = round(time.time() - float(heartbeat), 1) if heartbeat else None
    try:
        replies = app.control.inspect(timeout=0.5).ping() or {}
    except Exception:
        replies = {}
    return {
        "queues": lengths,
        "workers": sorted(replies),
        "heartbeat_age_seconds": age,
        "workers_alive": age is not None and age < HEARTBEAT_MAX_AGE,
    }


def endpoints_overview_get(*, minutes: int = 60) -> list[dict]:
    rows = []
    for series in timing_series(prefix="endpoint:"):
        summary = timing_summary(series=series, minutes=minutes)
        if summary["count"]:
            rows.append({"endpoint": series.removeprefix("endpoint:"), **summary})
    return sorted(rows, key=lambda row: -row["count"])


def events_list(*, kind: str | None = None, level: str | None = None) -> QuerySet[MonitoringEvent]:
    """Newest first; buffered events are flushed first so the log is live."""
    events_flush()
    events = MonitoringEvent.objects.all()
    if kind:
        events = events.filter(kind=kind)
    if level:
        events = events.filter(level=level)
    return events.order_by("-created_at", "-id")
