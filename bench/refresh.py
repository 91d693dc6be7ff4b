"""Benchmark 1: a price refresh of N instruments through real Celery workers against a stub provider
with a fixed latency, a batch size and a global rate limit.

Measured from the enqueue (planning included) to the job's SUCCESS with every price stored, then
compared with the physical bound and with the naive baseline (one request per symbol, one after the
other, each stored with its own save).

The bound: the provider's token bucket (prices/providers/pacing.py) starts full, so its `burst` requests go
at once and the others at `rate`; the last answer comes `latency` after it was asked for. So no job
can finish before max((requests - burst) / rate + latency, requests x latency / concurrency). The
steady-state bound, requests / rate, is what the same refresh takes when the bucket is empty (runs
back to back).

The provider's pacing is the product's default (YahooProvider.requests_per_second) unless `--rate`
says otherwise. The naive run is measured on a subset and extrapolated linearly: its cost per symbol
is constant (one round trip plus one save, and at least 1 / rate when the provider's pacing is
slower than a round trip: the naive loop must respect the provider's limit too).
"""

from __future__ import annotations

import math
import time

from bench.data import refresh_dataset, shared_portfolios_add
from bench.workers import celery_worker, queue_purge, worker_wait_idle
from tests.stubs.market import MarketStub

POLL_SECONDS = 0.01
JOB_TIMEOUT_SECONDS = 300


def _job_run(instrument_ids: list[int]) -> dict:
    """Start a refresh the way the API does (forced: every instrument is asked for) and follow it."""
    from django.utils import timezone

    from core.jobs import TERMINAL, job_get
    from prices.models import PriceHistory
    from prices.refresh.jobs import prices_refresh_job_start

    since = timezone.now()
    started = time.monotonic()
    job_id = prices_refresh_job_start(instrument_ids=instrument_ids, force=True, lock_scope=None).job_id
    enqueued = time.monotonic() - started
    job = job_get(job_id=job_id)
    while job["state"] not in TERMINAL:
        if time.monotonic() - started > JOB_TIMEOUT_SECONDS:
            raise TimeoutError(f"refresh job {job_id} still {job['state']} after {JOB_TIMEOUT_SECONDS} s")
        time.sleep(POLL_SECONDS)
        job = job_get(job_id=job_id)
    wall = time.monotonic() - started
    stored = PriceHistory.objects.filter(instrument_id__in=instrument_ids, last_updated__gte=since).count()
    return {"job_id": job_id, "state": job["state"], "wall_seconds": round(wall, 3),
            "enqueue_seconds": round(enqueued, 3), "done": job["done"], "failed": job["failed"],
            "stored": stored, "errors": job["errors"][:3]}


def _stub_reset(stub: MarketStub) -> None:
    with stub._lock:
        stub.quote_requests.clear()
        stub.request_times.clear()
        stub.max_in_flight = 0


def _stub_stats(stub: MarketStub) -> dict:
    times = sorted(stub.request_times)
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return {
        "requests": len(stub.quote_requests),
        "symbols_requested": sum(len(symbols) for symbols in stub.quote_requests),
        "max_in_flight": stub.max_in_flight,
        # Requests after the first, per second of the span they were sent in: the pace the bucket allowed.
        "observed_rate": round((len(times) - 1) / span, 2) if span else None,
    }


def _bucket_full(rate: float, burst: int) -> None:
    """Let the provider's bucket refill after the warm-up, as it is between scheduled runs."""
    time.sleep(max(1.0, burst / rate) + 0.2)


def yahoo_limits():
    """The Yahoo pacing the product runs with here (its client's default, or the environment's override)."""
    from prices.providers.pacing import provider_limits
    from prices.providers.yahoo import YahooProvider

    return provider_limits("yahoo", requests_per_second=YahooProvider.requests_per_second,
                           daily_quota=YahooProvider.daily_quota,
                           max_symbols_per_request=YahooProvider.max_symbols_per_request)


def _product_rate() -> float:
    from prices.providers.yahoo import YahooProvider

    return YahooProvider.requests_per_second


def _naive_run(*, stub: MarketStub, instrument_ids: list[int]) -> dict:
    """The seed's "before": each symbol requested on its own, one after the other, stored with its
    own save; timed unpaced (its pace under the provider's limit is applied by the caller)."""
    from prices.models import Instrument, PriceHistory
    from prices.providers.yahoo import YahooProvider

    provider = YahooProvider(base_url=stub.url)
    instruments = list(Instrument.objects.filter(pk__in=instrument_ids).order_by("symbol"))
    provider.latest_quotes([instruments[0].symbol])  # the crumb handshake, as a running worker has it
    started = time.monotonic()
    for instrument in instruments:
        quote = provider.latest_quotes([instrument.symbol]).quotes[instrument.symbol]
        PriceHistory.objects.update_or_create(instrument=instrument, date=quote.as_of.date(),
                                              defaults={"close": quote.price, "source": "yahoo"})
    seconds = time.monotonic() - started
    return {"symbols": len(instruments), "seconds": round(seconds, 3),
            "per_symbol_ms": round(seconds / len(instruments) * 1000, 2)}


def run(*, instruments: int, latency: float, batch_size: int, concurrency: int, naive_subset: int,
        portfolios: int, portfolio_holdings: int) -> dict:
    limits = yahoo_limits()
    rate, burst = limits.requests_per_second, limits.burst
    data = refresh_dataset(instruments=instruments)
    stub = MarketStub(latency=latency)
    expected_requests = math.ceil(instruments / batch_size)
    bound = max(max(0, expected_requests - burst) / rate + latency, expected_requests * latency / concurrency)
    steady = max(expected_requests / rate, expected_requests * latency / concurrency)
    result: dict = {
        "params": {"instruments": instruments, "latency_ms": latency * 1000, "rate_per_second": rate,
                   "burst": burst, "rate_is_product_default": rate == _product_rate(),
                   "batch_size": batch_size, "worker_concurrency": concurrency, "naive_subset": naive_subset,
                   "shared_portfolios": portfolios, "holdings_per_shared_portfolio": portfolio_holdings},
        "expected_requests": expected_requests,
        "bound_seconds": round(bound, 3),
        "steady_bound_seconds": round(steady, 3),
    }
    with stub.running():
        env = {"YAHOO_BASE_URL": stub.url}
        with celery_worker(queue="prices", pool="threads", concurrency=concurrency, env=env):
            # Warm-up: one batch, so the measured run meets a worker as it is in production (crumb
            # fetched, connections open, calendars loaded), not one still starting.
            warm = _job_run(data.instrument_ids[:batch_size])
            result["warmup"] = {"wall_seconds": warm["wall_seconds"], "state": warm["state"]}
            _bucket_full(rate, burst)
            _stub_reset(stub)

            one = _job_run(data.instrument_ids)
            one.update(_stub_stats(stub))
            one["after_work_seconds"] = round(worker_wait_idle(queue="prices"), 3)
            result["one_portfolio"] = one

            shared = shared_portfolios_add(instrument_ids=data.instrument_ids, portfolios=portfolios,
                                           holdings_each=portfolio_holdings)
            result["shared_setup"] = shared
            _bucket_full(rate, burst)
            _stub_reset(stub)
            many = _job_run(data.instrument_ids)
            many.update(_stub_stats(stub))
            # Bumping 10,000 portfolio versions and queueing their charts runs after SUCCESS: shown apart.
            many["after_work_seconds"] = round(worker_wait_idle(queue="prices"), 3)
            result["shared_portfolios"] = many
        result["naive"] = _naive_run(stub=stub, instrument_ids=data.instrument_ids[:naive_subset])
    # The refreshes asked for chart regenerations of the portfolios they touched: not this bench's subject.
    queue_purge("charts")
    # One request per symbol may not go faster than the provider allows either.
    naive_per_symbol = max(result["naive"]["per_symbol_ms"] / 1000, 1 / rate)
    result["naive"]["paced_per_symbol_ms"] = round(naive_per_symbol * 1000, 2)
    naive_total = naive_per_symbol * instruments
    result["naive_extrapolated_seconds"] = round(naive_total, 2)
    wall = result["one_portfolio"]["wall_seconds"]
    result["vs_bound"] = round(wall / bound, 3)
    result["vs_steady_bound"] = round(wall / steady, 3)
    result["speedup_vs_naive"] = round(naive_total / wall, 1)
    result["shared_vs_bound"] = round(result["shared_portfolios"]["wall_seconds"] / bound, 3)
    return result
