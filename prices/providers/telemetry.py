"""What the provider gateway records about its calls: latency and outcome per provider (read back by
/monitoring as series "provider:<name>"), and rate-limited events."""

from __future__ import annotations

import logging

from core.events import event_record_once
from core.soft import soft_fail
from core.timing import timing_record

# One "waited for the rate limit" event per provider per this many seconds: enough to see it happen.
RATE_WAIT_EVENT_EVERY = 60


def provider_series(provider: str) -> str:
    return f"provider:{provider}"


def provider_call_record(*, provider: str, seconds: float, outcome: str) -> None:
    """Count one request to a provider: its latency and outcome (ok, error, rate_limited, quota)."""
    with soft_fail("provider call not recorded", level=logging.DEBUG):  # metrics never fail a price fetch
        timing_record(series=provider_series(provider), seconds=seconds, counters={"requests": 1, outcome: 1})


def provider_event_once(*, provider: str, kind: str, window_seconds: int, message: str, level: str,
                        **context) -> None:
    """Record an event at most once per window per provider and kind (a flood tells nothing more)."""
    event_record_once(once_key=f"{kind}:{provider}", window_seconds=window_seconds, kind=kind, level=level,
                      message=message, provider=provider, **context)
