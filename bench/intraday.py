"""Benchmark: an intraday refresh at scale — how long until the charts and totals of every portfolio are
current again after a 5-minute refresh of all their instruments.

Dataset: `instruments` Yahoo-priced instruments with a year of daily closes, and `portfolios` portfolios of
`holdings` holdings each (10,000 × 20 by default), spread evenly over the instruments. Real workers: the
prices worker (threads) fetching from the loopback stub, and the charts worker (prefork, `chart_workers`
processes: the machine's 2 cores).

1. Every chart is generated once through the charts worker (the state before the refresh). Timed: it is the
   full-regeneration path over the whole population, the baseline — measured in this run, not a sample
   extrapolated.
2. An intraday refresh of all instruments (today's quote for each, as the 5-minute beat job does) is started
   the way the product starts it; measured from there until the job has finished and every portfolio's
   cached chart is current: the history of today for its present history version (today's closes are live,
   docs/charts.md). Then: how many charts the refresh regenerated (none expected), and on a sample, that the
   chart's last point as the API makes it (from the dashboard's valuation, cached per data version) equals
   the dashboard total, and that this total is the valuation at the refreshed quotes (computed afresh).
3. The read pass: every portfolio's live point and totals made once, as the first reads after the refresh
   would make them — the work the refresh leaves to the reads, timed apart. It runs in `read_processes`
   processes (the machine's 2 cores, as two web processes would serve those first reads), each taking an
   equal share of the portfolios.

Ratio: the baseline's seconds over the intraday refresh's.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time

import numpy as np

from bench.data import REFRESH_USER_PREFIX, TRANSACTION_COLUMNS, _copy, default_accounts_copy
from bench.workers import celery_worker, queue_purge
from tests.stubs.market import MarketStub

INTRADAY_PREFIX = "INTR"
USER_PREFIX = f"{REFRESH_USER_PREFIX}intraday-"
PORTFOLIOS_PER_USER = 100
HISTORY_DAYS = 365
POLL_SECONDS = 0.5
TIMEOUT_SECONDS = 1800
CHECKED_TOTALS = 20  # portfolios whose chart's last point is compared with their dashboard total
PROFILED_READS = 300  # read-pass portfolios profiled after the timed pass
SEED = 11


def _dataset(*, instruments: int, portfolios: int, holdings: int) -> dict:
    """Replaces whatever an earlier run left. Closes on weekdays up to yesterday (today's comes with the
    refresh), one buy per holding on the first day, in the portfolio's default account (tracking cash, as a
    user's: bench/data.py)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.utils import timezone

    from portfolio.models import Portfolio
    from prices.models import Instrument, PriceHistory, VerificationStatus

    started = time.monotonic()
    user_model = get_user_model()
    user_model.objects.filter(username__startswith=USER_PREFIX).delete()
    Instrument.objects.filter(symbol__startswith=INTRADAY_PREFIX).delete()
    created = Instrument.objects.bulk_create([
        Instrument(symbol=f"{INTRADAY_PREFIX}{k:05d}", name=f"Intraday {k}", currency="USD", exchange_mic="XNYS",
                   provider="yahoo", verification_status=VerificationStatus.VERIFIED)
        for k in range(instruments)
    ])
    today = timezone.localdate()
    days = [today - timedelta(days=n) for n in range(HISTORY_DAYS, 0, -1)]
    days = [d for d in days if d.weekday() < 5]
    rng = np.random.default_rng(SEED)
    closes = rng.uniform(20, 500, size=(instruments, 1)) * np.exp(
        np.cumsum(rng.normal(0.0003, 0.015, size=(instruments, len(days))), axis=1))
    stamp = timezone.now().isoformat()
    day_text = [d.isoformat() for d in days]
    lines = [f"{instrument.pk}\t{day}\t{close:.4f}\t\\N\tyahoo\t{stamp}\n"
             for k, instrument in enumerate(created)
             for day, close in zip(day_text, closes[k].tolist(), strict=True)]
    _copy(PriceHistory._meta.db_table, ["instrument_id", "date", "close", "adjusted_close", "source", "last_updated"],
          lines)
    password = make_password(None)
    users = user_model.objects.bulk_create([
        user_model(username=f"{USER_PREFIX}{n:05d}", password=password)
        for n in range(-(-portfolios // PORTFOLIOS_PER_USER))
    ])
    Portfolio.objects.bulk_create([
        Portfolio(owner=users[n // PORTFOLIOS_PER_USER], name=f"Intraday {n}", base_currency="USD")
        for n in range(portfolios)
    ], batch_size=2000)
    portfolio_ids = list(Portfolio.objects.filter(owner__in=users).order_by("pk").values_list("pk", flat=True))
    accounts = default_accounts_copy(portfolio_ids)
    ids = [i.pk for i in created]
    _copy("portfolio_transaction", TRANSACTION_COLUMNS,
          [f"{pid}\t{ids[k]}\tBUY\t{day_text[0]}\t10\t{closes[k, 0]:.4f}\t1\tUSD\t\t{stamp}\t{accounts[pid]}\n"
           for n, pid in enumerate(portfolio_ids) for k in ((n * holdings + j) % len(ids) for j in range(holdings))])
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {PriceHistory._meta.db_table}")
        cursor.execute("ANALYZE portfolio_account")
        cursor.execute("ANALYZE portfolio_transaction")
    return {"instrument_ids": ids, "portfolio_ids": portfolio_ids, "price_rows": len(lines),
            "seconds": round(time.monotonic() - started, 1)}


def _generations(portfolio_ids: list[int]) -> dict[int, tuple[bytes | None, bytes | None, bytes | None]]:
    """Each portfolio's cached chart as (history version, day it was made for, when it was made)."""
    from charts.cache import chart_parts_get

    return {pid: tuple(chart_parts_get(portfolio_id=pid, names=["version", "as_of", "generated_at"]).values())
            for pid in portfolio_ids}


def _outdated(portfolio_ids: list[int]) -> int:
    """How many of the portfolios have no cached chart history for their present history version and today
    (what the chart API serves as current; its live point is made when it is read)."""
    from django.utils import timezone

    from charts.cache import chart_is_current
    from portfolio.models import Portfolio

    versions = dict(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "history_version"))
    today = timezone.localdate()
    return sum(1 for pid in portfolio_ids
               if not chart_is_current(portfolio_id=pid, version=versions.get(pid, -1), day=today))


def _wait_current(portfolio_ids: list[int], *, started: float, job_id: str | None = None) -> dict:
    from core.jobs import TERMINAL, job_get

    job_seconds = None
    while True:
        if job_id is not None and job_seconds is None:
            job = job_get(job_id=job_id)
            if job["state"] in TERMINAL:
                job_seconds = time.monotonic() - started
                if job["state"] != "SUCCESS":
                    raise RuntimeError(f"intraday refresh job {job['state']}: {job['errors'][:3]}")
        outdated = _outdated(portfolio_ids) if job_id is None or job_seconds is not None else len(portfolio_ids)
        if not outdated:
            return {"seconds": round(time.monotonic() - started, 2),
                    "job_seconds": round(job_seconds, 2) if job_seconds is not None else None}
        if time.monotonic() - started > TIMEOUT_SECONDS:
            raise TimeoutError(f"{outdated} of {len(portfolio_ids)} charts still outdated after {TIMEOUT_SECONDS} s")
        time.sleep(POLL_SECONDS)


def _live_last_point(portfolio) -> tuple[str | None, str]:
    """What the chart API answers as the 1M range's last value, and the dashboard's total: both made as a
    request makes them (the dashboard's valuation cached per data version, the chart's live point on it)."""
    import json

    from charts.cache import chart_parts_get
    from charts.live import LivePoint, live_valuation_get
    from portfolio.dashboard import dashboard_data_get

    found = chart_parts_get(portfolio_id=portfolio.pk, names=["range:1M", "live"])
    live = LivePoint.of(base=found["live"], live=live_valuation_get(portfolio=portfolio))
    points = json.loads(live.series(found["range:1M"]) if live else found["range:1M"] or b"[{}]")
    return points[-1].get("value"), json.loads(dashboard_data_get(portfolio=portfolio).initial)["total_value"]


def _totals_agree(portfolio_ids: list[int], *, refreshed: dict[int, str]) -> dict:
    """Each sampled portfolio's chart (as the API serves it) ends on its dashboard total, and that total is
    the valuation at the refreshed quotes (computed afresh here, uncached)."""
    from portfolio.dashboard import dashboard_data_compute
    from portfolio.models import Portfolio

    sample = portfolio_ids[:: max(1, len(portfolio_ids) // CHECKED_TOTALS)][:CHECKED_TOTALS]
    agree = 0
    for portfolio in Portfolio.objects.filter(pk__in=sample):
        chart_value, total = _live_last_point(portfolio)
        fresh = dashboard_data_compute(portfolio=portfolio)["initial"]["total_value"]
        agree += chart_value == total == fresh and fresh != refreshed.get(portfolio.pk)
    return {"checked": len(sample), "chart_ends_on_dashboard_total": agree}


def _read_share(rows: list[tuple]) -> int:
    from portfolio.access import PortfolioAccess

    for row in rows:
        _live_last_point(PortfolioAccess(*row))
    return len(rows)


def _read_pass(portfolio_ids: list[int], *, processes: int) -> dict:
    """Every portfolio's live chart point and totals made once, as the first reads after the refresh make
    them (each a dashboard valuation computed and cached, then the live point on it), split evenly over
    `processes` forked processes: the cost the refresh leaves to the reads, spread over them (and over the
    web processes) in the product, all of it here. Timed from before the forks to the last share's end."""
    from django.db import connections

    from portfolio.models import Portfolio

    rows = list(Portfolio.objects.filter(pk__in=portfolio_ids).values_list("pk", "owner_id", "data_version",
                                                                           "history_version"))
    # Closed before the fork: a child closing an inherited connection would end the parent's session on the
    # shared socket. Each child opens its own (Redis clients reconnect by themselves in a new process).
    connections.close_all()
    started = time.monotonic()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        done = sum(pool.map(_read_share, [rows[share::processes] for share in range(processes)], chunksize=1))
    seconds = time.monotonic() - started
    if done != len(rows):
        raise RuntimeError(f"read pass made {done} of {len(rows)} portfolios")
    return {"seconds": round(seconds, 2), "per_portfolio_ms": round(seconds / max(1, len(rows)) * 1000, 2),
            "processes": processes}


def _read_pass_profile(portfolio_ids: list[int]) -> dict:
    """Where a read-pass portfolio's time goes: a sample made cold again exactly as the intraday refresh made
    them (a data version bump for today's quotes, the history unchanged), then read once each under the
    profiler. Run after the timed pass, so the figure it explains is not disturbed."""
    from django.utils import timezone

    from bench.profiling import profile
    from portfolio.access import PortfolioAccess
    from portfolio.cache import portfolio_versions_bump
    from portfolio.models import Portfolio

    sample = portfolio_ids[:: max(1, len(portfolio_ids) // PROFILED_READS)][:PROFILED_READS]
    portfolio_versions_bump(portfolio_ids=sample, since=timezone.localdate())
    rows = list(Portfolio.objects.filter(pk__in=sample).values_list("pk", "owner_id", "data_version",
                                                                    "history_version"))

    accesses = iter([PortfolioAccess(*row) for row in rows])
    return profile("read pass (a portfolio's totals and live point, cold after an intraday refresh)",
                   lambda: _live_last_point(next(accesses)), repeat=len(rows))


def _totals_before(portfolio_ids: list[int]) -> dict[int, str]:
    from portfolio.dashboard import dashboard_data_compute
    from portfolio.models import Portfolio

    sample = portfolio_ids[:: max(1, len(portfolio_ids) // CHECKED_TOTALS)][:CHECKED_TOTALS]
    return {p.pk: dashboard_data_compute(portfolio=p)["initial"]["total_value"]
            for p in Portfolio.objects.filter(pk__in=sample)}


def run(*, instruments: int, portfolios: int, holdings: int, chart_workers: int, latency: float,
        concurrency: int, read_processes: int) -> dict:
    from django.conf import settings
    from django.utils import timezone

    from charts.services import chart_regeneration_request
    from prices.refresh.jobs import prices_refresh_job_start

    data = _dataset(instruments=instruments, portfolios=portfolios, holdings=holdings)
    pids = data["portfolio_ids"]
    result: dict = {
        "params": {"instruments": instruments, "portfolios": portfolios, "holdings": holdings,
                   "chart_workers": chart_workers, "read_processes": read_processes,
                   "prices_worker_threads": concurrency,
                   "latency_ms": latency * 1000, "history_days": HISTORY_DAYS},
        "setup": {"price_rows": data["price_rows"], "seconds": data["seconds"]},
    }
    stub = MarketStub(latency=latency)
    # Quotes inside today's New York session: at 00:00-05:00 UTC (and on a weekend) a quote made "now" belongs
    # to a completed session, a change of the history that rightly regenerates every chart; the target is
    # about the 5-minute refresh during a session.
    stub.quote_time = datetime.combine(timezone.localdate(), dt_time(18, 0), tzinfo=UTC)
    with stub.running(), \
            celery_worker(queue="charts", pool="prefork", concurrency=chart_workers), \
            celery_worker(queue="prices", pool="threads", concurrency=concurrency, env={"YAHOO_BASE_URL": stub.url}):
        started = time.monotonic()
        chart_regeneration_request(portfolio_ids=pids)
        result["full_regeneration"] = _wait_current(pids, started=started)

        before = _generations(pids)
        totals_before = _totals_before(pids)
        started = time.monotonic()
        job_id = prices_refresh_job_start(instrument_ids=data["instrument_ids"], force=True, lock_scope=None).job_id
        result["intraday"] = _wait_current(pids, started=started, job_id=job_id)
        # Regenerations the refresh caused (none expected: today's closes are live, not history); waited
        # for a debounce period so that any it queued would show.
        time.sleep(settings.CHART_DEBOUNCE_SECONDS + 1)
        after = _generations(pids)
        result["intraday"]["charts_regenerated"] = sum(1 for pid in pids if after[pid] != before[pid])
        result["totals"] = _totals_agree(pids, refreshed=totals_before)
        result["read_pass"] = _read_pass(pids, processes=read_processes)
    # What the target asks: how long after the refresh has stored its quotes every chart and every total is
    # current. The refresh job's own time is the provider's pacing (section 1 bounds it); after it, the
    # charts' wait plus every portfolio's totals and live point made once, in `read_processes` processes (the
    # product makes them lazily, on the reads of the portfolios actually viewed).
    charts_wait = round(result["intraday"]["seconds"] - result["intraday"]["job_seconds"], 2)
    result["after_refresh"] = {"charts_current_seconds": charts_wait,
                               "read_pass_seconds": result["read_pass"]["seconds"],
                               "seconds": round(charts_wait + result["read_pass"]["seconds"], 2)}
    # Workers stopped: the regenerations the sample's bump queues are purged below, none runs meanwhile.
    result["read_pass_profile"] = _read_pass_profile(pids)
    queue_purge("charts", "prices")
    full, intraday = result["full_regeneration"]["seconds"], result["intraday"]["seconds"]
    result["per_portfolio_ms"] = {"full_regeneration": round(full / len(pids) * 1000, 2),
                                  "intraday": round(intraday / len(pids) * 1000, 2)}
    result["speedup_vs_full_regeneration"] = round(full / intraday, 2) if intraday else None
    return result
