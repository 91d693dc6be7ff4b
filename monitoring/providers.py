"""Provider health as /monitoring shows it: call latencies and outcomes (recorded by the prices app's
provider gateway)."""

from __future__ import annotations

from core.timing import timing_summary
from prices.providers.telemetry import provider_series


def provider_health(*, name: str, minutes: int = 60) -> dict:
    summary = timing_summary(series=provider_series(name), minutes=minutes)
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
