"""Provider health as /monitoring shows it: call latencies and outcomes, circuit state, quota left."""

from __future__ import annotations

from contextlib import suppress

from django_redis import get_redis_connection

from monitoring.events import event_record
from monitoring.timing import timing_record, timing_summary

# One "waited for the rate limit" event per provider per this many seconds: enough to see it happen.
RATE_WAIT_EVENT_EVERY = 60


def provider_call_record(*, provider: str, seconds: float, outcome: str) -> None:
    """Count one request to a provider: its latency and outcome (ok, error, rate_limited, quota)."""
    with suppress(Exception):  # metrics never fail a price fetch
        timing_record(series=f"provider:{provider}", seconds=seconds, counters={"requests": 1, outcome: 1})


def provider_event_once(*, provider: str, kind: str, window_seconds: int, message: str, level: str,
                        **context) -> None:
    """Record an event at most once per window per provider and kind (a flood tells nothing more)."""
    try:
        fresh = get_redis_connection("default").set(f"folio:event-once:{kind}:{provider}", 1, nx=True,
                                                    ex=window_seconds)
    except Exception:
        fresh = True
    if fresh:
        event_record(kind=kind, level=level, message=message, provider=provider, **context)


def provider_health(*, name: str, minutes: int = 60) -> dict:
    summary = timing_summary(series=f"provider:{name}", minutes=minutes)
    counters = summary.pop("counters")
    requests = counters.get("requests", 0)
    return {
        **summary,
        "requests": requests,
        "errors": counters.get("error", 0),
        "rate_limited": counters.get("rate_limited", 0),
        "error_rate": round(counters.get("error", 0) / requests, 4) if requests else None,
        "rate_limited_rate": round(counters.get("rate_limited", 0) / requests, 4) if requests else None,
    }
