"""Benchmark 2: the dashboard endpoints of the 500-holding portfolio, warm and cold, through Django's
test client (server time, no network) and through gunicorn over loopback (one client, round trip),
with the SQL queries of each request, against the naive view that computes everything in the request.

Warm: the version-keyed caches hold the answer. Cold: the portfolio's version was bumped just before
(one INCR, what any write or new price does), so totals and holdings are recomputed from the database
and the chart endpoint serves the last chart marked outdated while it queues a regeneration.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from bench.stats import ratio, summary_ms
from bench.web import gunicorn_server
from bench.workers import queue_purge

ENDPOINTS = {
    "initial": "/api/dashboard-initial-data/{pid}/",
    "holdings": "/api/dashboard-holdings-data/{pid}/",
    "chart": "/api/dashboard-chart-data/{pid}/?range=1Y",
}
NAIVE = "/bench/naive-dashboard/{pid}/"

Getter = Callable[[str], tuple[int, float, bytes]]


def chart_make_current(portfolio_id: int) -> None:
    """Regenerate the chart for the portfolio's current version (as the worker would after a bump)."""
    from charts.services import chart_data_generate

    chart_data_generate(portfolio_id=portfolio_id)


def _test_client_getter(token: str) -> Getter:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")

    def get(url: str) -> tuple[int, float, bytes]:
        started = time.perf_counter()
        response = client.get(url)
        return response.status_code, time.perf_counter() - started, response.content

    return get


def _http_getter(base: str, token: str) -> Getter:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"

    def get(url: str) -> tuple[int, float, bytes]:
        started = time.perf_counter()
        response = session.get(base + url, timeout=120)
        return response.status_code, time.perf_counter() - started, response.content

    return get


def _timed(get: Getter, url: str, samples: int, *, before: Callable[[], None] | None = None) -> dict:
    seconds, statuses, size = [], set(), 0
    for _ in range(samples):
        if before:
            before()
        status, elapsed, body = get(url)
        statuses.add(status)
        seconds.append(elapsed)
        size = len(body)
    return {**summary_ms(seconds), "statuses": sorted(statuses), "bytes": size}


def _endpoints_measure(get: Getter, *, portfolio_id: int, warm: int, cold: int) -> dict:
    from portfolio.cache import portfolio_version_bump

    def bump() -> None:
        portfolio_version_bump(portfolio_id=portfolio_id)

    results = {}
    for name, template in ENDPOINTS.items():
        url = template.format(pid=portfolio_id)
        if name == "chart":
            chart_make_current(portfolio_id)
        get(url)  # fills the cache: what follows is warm
        results[name] = {"warm": _timed(get, url, warm), "cold": _timed(get, url, cold, before=bump)}
    # Leave it warm and current for whatever comes next.
    chart_make_current(portfolio_id)
    for template in ENDPOINTS.values():
        get(template.format(pid=portfolio_id))
    return results


def _queries(token: str, portfolio_id: int) -> dict:
    """SQL statements per request, warm and cold, per endpoint."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portfolio.cache import portfolio_version_bump

    get = _test_client_getter(token)
    counts = {}
    for name, template in ENDPOINTS.items():
        url = template.format(pid=portfolio_id)
        get(url)
        with CaptureQueriesContext(connection) as warm:
            get(url)
        portfolio_version_bump(portfolio_id=portfolio_id)
        with CaptureQueriesContext(connection) as cold:
            get(url)
        counts[name] = {"warm": len(warm.captured_queries), "cold": len(cold.captured_queries)}
    return counts


def _naive(get: Getter, portfolio_id: int, samples: int, *, count_queries: bool) -> dict:
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = NAIVE.format(pid=portfolio_id)
    seconds, breakdown, queries = [], [], None
    for n in range(samples):
        if count_queries and n == 0:
            with CaptureQueriesContext(connection) as captured:
                status, elapsed, body = get(url)
            queries = len(captured.captured_queries)
        else:
            status, elapsed, body = get(url)
        if status != 200:
            raise RuntimeError(f"naive view answered {status}")
        seconds.append(elapsed)
        breakdown.append(json.loads(body)["timings"])
    return {
        **summary_ms(seconds),
        "queries": queries,
        "totals_ms": round(1000 * min(b["totals_seconds"] for b in breakdown), 1),
        "chart_ms": round(1000 * min(b["chart_seconds"] for b in breakdown), 1),
    }


def _ratios(measured: dict, naive: dict) -> dict:
    """How many times faster than the naive view: the dashboard's three requests together (what it
    takes to show totals, holdings and chart) against the naive view's one, p50 against p50."""
    warm = sum(measured[name]["warm"]["p50"] for name in ENDPOINTS)
    cold = sum(measured[name]["cold"]["p50"] for name in ENDPOINTS)
    return {
        "three_requests_warm_p50_ms": round(warm, 2),
        "three_requests_cold_p50_ms": round(cold, 2),
        "speedup_warm": ratio(naive["p50"], warm),
        "speedup_cold": ratio(naive["p50"], cold),
        "initial_speedup_warm": ratio(naive["p50"], measured["initial"]["warm"]["p50"]),
    }


def run(*, data, warm_samples: int, cold_samples: int, naive_samples: int, web_workers: int,
        web_threads: int) -> dict:
    pid = data.portfolio_id
    result: dict = {"portfolio": {"holdings": data.holdings, "price_rows": data.price_rows,
                                  "transactions": data.transactions}}
    result["queries"] = {"large": _queries(data.token, pid), "small": _queries(data.token, data.small_portfolio_id),
                         "small_holdings": data.small_holdings, "large_holdings": data.holdings}

    client = _test_client_getter(data.token)
    result["test_client"] = _endpoints_measure(client, portfolio_id=pid, warm=warm_samples, cold=cold_samples)
    result["test_client_naive"] = _naive(client, pid, naive_samples, count_queries=True)
    result["test_client_ratios"] = _ratios(result["test_client"], result["test_client_naive"])

    with gunicorn_server(name="web-dashboard", workers=web_workers, threads=web_threads) as server:
        http = _http_getter(server.url, data.token)
        result["gunicorn"] = _endpoints_measure(http, portfolio_id=pid, warm=warm_samples, cold=cold_samples)
        result["gunicorn_naive"] = _naive(http, pid, naive_samples, count_queries=False)
        result["gunicorn_ratios"] = _ratios(result["gunicorn"], result["gunicorn_naive"])
        result["web"] = {"workers": web_workers, "threads": web_threads}
    # Cold chart requests queued regenerations that no bench worker is there to run.
    queue_purge("charts")
    return result
