"""Benchmark 2: the dashboard endpoints of the 500-holding portfolio, warm and cold, through Django's
test client (server time, no network) and through the Procfile's web server over loopback (one client, round
trip), with the SQL queries of each request, against the naive view that computes everything in the request.

Warm: every cache holds the answer. Cold: nothing the page needs is cached — just before each cold
request the portfolio's data version is bumped as a refresh of today's quotes bumps it (the dashboard
answers are recomputed; the chart's history version stays, as after that refresh), the token's cached
user is forgotten (looked up in Postgres again) and the chart is deleted (no outdated chart to serve: it
must be generated). A cold chart request is timed until the
chart arrives: its 202, the generation in a real Celery worker (queued at once: there is no chart), then
the 200. The cold page is the three requests in the page's order from that state, chart included.

A cold read still finds the portfolio's replay of its transactions kept in Postgres (portfolio/kept.py): the
version bump outdates the answers, not the replay, as a new price or a Redis flush does. A read after the
user's own trade replays, since the trade's trigger outdates the replay too. That case is measured beside the
cold one ("cold, replay outdated too"): the same reset, plus the replay outdated as a trade's trigger does it,
without changing the data, so both value the same portfolio.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import requests

from bench.stats import ratio, summary_ms, timed
from bench.web import web_server
from bench.workers import celery_worker, queue_purge, worker_wait_settled
from config.process import web_process_ready

ENDPOINTS = {
    "initial": "/api/dashboard-initial-data/{pid}/",
    "holdings": "/api/dashboard-holdings-data/{pid}/",
    "chart": "/api/dashboard-chart-data/{pid}/?range=1Y",
}
NAIVE = "/bench/naive-dashboard/{pid}/"
POLL_SECONDS = 0.05
WARM_UP_PER_PROCESS = 4  # cold requests per web process before timing (8 over 2 processes: all reached)
CHART_READY_TIMEOUT_SECONDS = 120

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


def cold_reset(*, portfolio_id: int, token: str) -> None:
    """Nothing the page needs cached any more: answers outdated as a refresh of today's quotes outdates them
    (the commonest cause: every few minutes while markets are open), token forgotten, chart gone. The quotes'
    bump leaves the chart's history version as it is, as the refresh does: a bump of the history would also
    queue a regeneration, debounced, that a later sample's timed requests would compete with for the cores,
    which no page load after a refresh of today's quotes meets."""
    from django.utils import timezone

    from charts.cache import chart_data_delete
    from config.authentication import token_cache_forget
    from portfolio.cache import portfolio_versions_bump

    portfolio_versions_bump(portfolio_ids=[portfolio_id], since=timezone.localdate())
    token_cache_forget(keys=[token])
    chart_data_delete(portfolio_id=portfolio_id)


# What a trade's trigger does to the portfolio's kept replay (migration portfolio/0009), without the trade.
REPLAY_OUTDATE_SQL = "SELECT portfolio_replay_outdate(ARRAY[%s]::bigint[])"


def replay_outdate(portfolio_id: int) -> None:
    """The portfolio's kept replay no longer serves: the next valuation replays its transactions."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(REPLAY_OUTDATE_SQL, [portfolio_id])


def cold_replay_reset(*, portfolio_id: int, token: str) -> None:
    """The cold reset, and the replay outdated too: the state a read finds after the user's own trade."""
    cold_reset(portfolio_id=portfolio_id, token=token)
    replay_outdate(portfolio_id)


def _chart_worker():
    """A charts worker for the cold charts, on an empty queue: no regeneration queued by earlier bumps
    (their debounce claims dropped with them) runs into the measurement."""
    from core.redis_store import redis_client, redis_key

    queue_purge("charts")
    client = redis_client()
    claims = [*client.scan_iter(match=redis_key("chart", "*", "scheduled"), count=1000),
              *client.scan_iter(match=redis_key("chart", "*", "prompt"), count=1000)]
    if claims:
        client.delete(*claims)
    return celery_worker(queue="charts", pool="solo", concurrency=1)


def until_ready(get: Getter, url: str) -> tuple[int, float, bytes]:
    """GET until the answer is no longer 202 (a chart being generated), polling as the page does."""
    started = time.perf_counter()
    while True:
        status, _, body = get(url)
        if status != 202:
            return status, time.perf_counter() - started, body
        if time.perf_counter() - started > CHART_READY_TIMEOUT_SECONDS:
            raise TimeoutError(f"{url} still 202 after {CHART_READY_TIMEOUT_SECONDS} s")
        time.sleep(POLL_SECONDS)


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


def _page_cold(get: Getter, *, portfolio_id: int, samples: int, reset: Callable[[], None]) -> dict:
    """The whole page from nothing cached: initial, holdings, then the chart until it arrives."""
    totals, table, page = [], [], []
    for _ in range(samples):
        reset()
        started = time.perf_counter()
        get(ENDPOINTS["initial"].format(pid=portfolio_id))
        totals.append(time.perf_counter() - started)
        get(ENDPOINTS["holdings"].format(pid=portfolio_id))
        table.append(time.perf_counter() - started)
        status, _, _ = until_ready(get, ENDPOINTS["chart"].format(pid=portfolio_id))
        if status != 200:
            raise RuntimeError(f"cold chart answered {status}")
        page.append(time.perf_counter() - started)
    return {"totals": summary_ms(totals), "totals_and_holdings": summary_ms(table), "with_chart": summary_ms(page)}


def _compute_alone(*, portfolio_id: int, samples: int) -> dict:
    """What a cold initial-data read computes, timed alone in this process: the valuation and the answers made of
    it (dashboard_data_compute), with no request, authentication or cache around it, the kept replay decoded as a
    web process that read it before has it. The least a cold read can cost, whatever the web tier."""
    from portfolio.dashboard import dashboard_data_compute
    from portfolio.models import Portfolio

    portfolio = Portfolio.objects.get(pk=portfolio_id)
    dashboard_data_compute(portfolio=portfolio)  # the replay decoded and kept, as in a web process
    return summary_ms([timed(lambda: dashboard_data_compute(portfolio=portfolio))[0] for _ in range(samples)])


def _replay_outdated_measure(get: Getter, *, portfolio_id: int, token: str, cold: int, cold_pages: int) -> dict:
    """Cold with the replay outdated too: initial data alone (as many samples as the cold ones), then totals and
    holdings as the cold page shows them (as many as the cold pages; the chart is the cold page's, unchanged)."""
    def reset() -> None:
        cold_replay_reset(portfolio_id=portfolio_id, token=token)

    initial_url = ENDPOINTS["initial"].format(pid=portfolio_id)
    holdings_url = ENDPOINTS["holdings"].format(pid=portfolio_id)
    initial = _timed(get, initial_url, cold, before=reset)
    table = []
    for _ in range(cold_pages):
        reset()
        started = time.perf_counter()
        statuses = (get(initial_url)[0], get(holdings_url)[0])
        table.append(time.perf_counter() - started)
        if statuses != (200, 200):
            raise RuntimeError(f"cold totals and holdings, replay outdated, answered {statuses}")
    if initial["statuses"] != [200]:
        raise RuntimeError(f"cold initial data, replay outdated, answered {initial['statuses']}")
    return {"initial": initial, "totals_and_holdings": summary_ms(table)}


def _endpoints_measure(get: Getter, *, portfolio_id: int, token: str, warm: int, cold: int, cold_pages: int) -> dict:
    def reset() -> None:
        cold_reset(portfolio_id=portfolio_id, token=token)

    results = {}
    for name, template in ENDPOINTS.items():
        url = template.format(pid=portfolio_id)
        if name == "chart":
            chart_make_current(portfolio_id)
        get(url)  # fills the caches: what follows is warm
        results[name] = {"warm": _timed(get, url, warm)}
        if name != "chart":
            results[name]["cold"] = _timed(get, url, cold, before=reset)
    # With no worker running, as the cold requests above (the resets queue no regeneration: the history is as it was).
    results["cold_replay_outdated"] = _replay_outdated_measure(get, portfolio_id=portfolio_id, token=token,
                                                               cold=cold, cold_pages=cold_pages)
    # Each cold chart waits for a generation: as many as cold pages, with one worker for both. A sample
    # starts once the worker holds nothing: the chart arrives as the generation stores it, before its task
    # ends, and what is left of it must not run into the next sample's timed requests.
    chart_url = ENDPOINTS["chart"].format(pid=portfolio_id)

    def settled_reset() -> None:
        worker_wait_settled(queue="charts")
        reset()

    with _chart_worker():
        results["chart"]["cold"] = _timed(lambda u: until_ready(get, u), chart_url, cold_pages, before=settled_reset)
        results["page_cold"] = _page_cold(get, portfolio_id=portfolio_id, samples=cold_pages, reset=settled_reset)
    queue_purge("charts")
    # Leave it warm and current for whatever comes next.
    chart_make_current(portfolio_id)
    for template in ENDPOINTS.values():
        get(template.format(pid=portfolio_id))
    return results


def queries_count(token: str, portfolio_id: int) -> dict:
    """SQL statements per request, warm and cold (nothing cached: the first answer, a 202 for the chart),
    per endpoint."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    get = _test_client_getter(token)
    counts = {}
    chart_make_current(portfolio_id)
    for name, template in ENDPOINTS.items():
        url = template.format(pid=portfolio_id)
        get(url)
        with CaptureQueriesContext(connection) as warm:
            get(url)
        cold_reset(portfolio_id=portfolio_id, token=token)
        with CaptureQueriesContext(connection) as cold:
            get(url)
        counts[name] = {"warm": len(warm.captured_queries), "cold": len(cold.captured_queries)}
    chart_make_current(portfolio_id)
    return counts


def _naive(get: Getter, portfolio_id: int, samples: int, *, count_queries: bool) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = NAIVE.format(pid=portfolio_id)
    seconds, breakdown, queries, body = [], [], None, b"{}"
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
    answer = json.loads(body)
    return {
        **summary_ms(seconds),
        "queries": queries,
        "total_value": answer.get("total_value"),
        "total_cost": answer.get("total_cost"),
        "holdings_count": answer.get("holdings_count"),
        "series": answer.get("series"),
        "totals_ms": round(1000 * min(b["totals_seconds"] for b in breakdown), 1),
        "chart_ms": round(1000 * min(b["chart_seconds"] for b in breakdown), 1),
    }


# What the naive view and the product both answer: the totals, the number of holdings and the 1Y chart,
# every point of it (its last one is today's live total, which equals the totals whatever the days before).
AGREED = ("total_value", "total_cost", "holdings_count", "series")


def product_answer(get: Getter, *, portfolio_id: int) -> dict:
    """The product's answers to what the naive view computes (AGREED), through its API."""
    status, _, body = get(ENDPOINTS["initial"].format(pid=portfolio_id))
    if status != 200:
        raise RuntimeError(f"initial data answered {status}")
    initial = json.loads(body)
    status, _, body = until_ready(get, ENDPOINTS["chart"].format(pid=portfolio_id))
    if status != 200:
        raise RuntimeError(f"chart answered {status}")
    return {"total_value": initial["total_value"], "total_cost": initial["total_cost"],
            "holdings_count": initial["holdings_count"], "series": json.loads(body)["series"]}


def _difference(name: str, naive, product) -> dict:
    """What differs, readably: a chart by its length and first differing point, anything else whole."""
    if name != "series" or not isinstance(naive, list) or not isinstance(product, list):
        return {"naive": naive, "product": product}
    # The shorter one ends where the other goes on: that is the first difference then.
    first = next((n for n, (a, b) in enumerate(zip(naive, product, strict=False)) if a != b),
                 min(len(naive), len(product)))
    return {"points": {"naive": len(naive), "product": len(product)}, "first_differing": first,
            "naive": naive[first] if first < len(naive) else None,
            "product": product[first] if first < len(product) else None}


def agreement_check(get: Getter, *, portfolio_id: int, naive: dict) -> dict:
    """Both sides compute the same thing: the totals to the cent, the number of holdings (cash is one) and
    every point of the 1Y chart must be equal. Raises when they are not — a baseline that computes something
    else makes every ratio against it meaningless — after saying what differs. Returns what was compared (the
    chart by its length and last point)."""
    chart_make_current(portfolio_id)  # the chart answered at once, not a 202
    product = product_answer(get, portfolio_id=portfolio_id)
    differ = {name: _difference(name, naive[name], product[name]) for name in AGREED if naive[name] != product[name]}
    if differ:
        raise RuntimeError(f"naive view and product disagree on portfolio {portfolio_id}: {differ}")
    series = product["series"]
    return {**{name: product[name] for name in AGREED if name != "series"},
            "series_points": len(series), "series_last": series[-1] if series else None, "equal": True}


def _ratios(measured: dict, naive: dict) -> dict:
    """How many times faster than the naive view, p50 against p50: the dashboard's three requests
    together warm; from nothing cached, totals and holdings (what the naive view computes in its
    request), and the whole page with its chart generated; and totals and holdings from nothing cached with the
    kept replay outdated too."""
    warm = sum(measured[name]["warm"]["p50"] for name in ENDPOINTS)
    cold = measured["page_cold"]
    replayed = measured["cold_replay_outdated"]
    return {
        "three_requests_warm_p50_ms": round(warm, 2),
        "cold_totals_and_holdings_p50_ms": cold["totals_and_holdings"]["p50"],
        "cold_page_with_chart_p50_ms": cold["with_chart"]["p50"],
        "speedup_warm": ratio(naive["p50"], warm),
        "speedup_cold": ratio(naive["p50"], cold["totals_and_holdings"]["p50"]),
        "speedup_cold_with_chart": ratio(naive["p50"], cold["with_chart"]["p50"]),
        "initial_speedup_warm": ratio(naive["p50"], measured["initial"]["warm"]["p50"]),
        "initial_cold_vs_warm_p95": ratio(measured["initial"]["cold"]["p95"], measured["initial"]["warm"]["p95"]),
        # From nothing cached and the kept replay outdated too (after the user's own trade): information, no target.
        "cold_replay_outdated_initial_p50_ms": replayed["initial"]["p50"],
        "cold_replay_outdated_initial_p95_ms": replayed["initial"]["p95"],
        "cold_replay_outdated_totals_and_holdings_p50_ms": replayed["totals_and_holdings"]["p50"],
        "speedup_cold_replay_outdated": ratio(naive["p50"], replayed["totals_and_holdings"]["p50"]),
    }


def _processes_warm(base: str, *, token: str, portfolio_id: int, web_workers: int) -> list[float]:
    """Each web process computes a cold answer once, untimed by the figures: what a process loads the
    first time (modules not loaded as it started) is its start-up, not a cold cache. Fresh connections, so they
    spread over the processes (a keep-alive session would stay with one)."""
    seconds = []
    for _ in range(WARM_UP_PER_PROCESS * web_workers):
        cold_reset(portfolio_id=portfolio_id, token=token)
        started = time.perf_counter()
        requests.get(base + ENDPOINTS["initial"].format(pid=portfolio_id), timeout=120,
                     headers={"Authorization": f"Token {token}", "Connection": "close"}).raise_for_status()
        seconds.append(time.perf_counter() - started)
    return [round(s * 1000, 1) for s in seconds]


def run(*, data, warm_samples: int, cold_samples: int, cold_pages: int, naive_samples: int, web_workers: int,
        web_threads: int) -> dict:
    from django.conf import settings

    pid = data.portfolio_id
    result: dict = {"portfolio": {"holdings": data.holdings, "price_rows": data.price_rows,
                                  "transactions": data.transactions},
                    "chart_debounce_seconds": settings.CHART_DEBOUNCE_SECONDS}
    result["queries"] = {"large": queries_count(data.token, pid),
                         "small": queries_count(data.token, data.small_portfolio_id),
                         "small_holdings": data.small_holdings, "large_holdings": data.holdings}

    # This process answers the test client's requests as a web process: readied as config/wsgi.py readies one.
    web_process_ready()
    client = _test_client_getter(data.token)
    result["test_client"] = _endpoints_measure(client, portfolio_id=pid, token=data.token, warm=warm_samples,
                                               cold=cold_samples, cold_pages=cold_pages)
    result["test_client"]["compute_alone"] = _compute_alone(portfolio_id=pid, samples=cold_samples)
    result["test_client_naive"] = _naive(client, pid, naive_samples, count_queries=True)
    result["test_client_ratios"] = _ratios(result["test_client"], result["test_client_naive"])
    result["agreement"] = agreement_check(client, portfolio_id=pid, naive=result["test_client_naive"])
    del result["test_client_naive"]["series"]  # compared, and summed up in the agreement: not kept twice

    with web_server(name="web-dashboard", workers=web_workers, threads=web_threads) as server:
        result["process_warm_up_ms"] = _processes_warm(server.url, token=data.token,
                                                       portfolio_id=data.small_portfolio_id, web_workers=web_workers)
        http = _http_getter(server.url, data.token)
        result["server"] = _endpoints_measure(http, portfolio_id=pid, token=data.token, warm=warm_samples,
                                                cold=cold_samples, cold_pages=cold_pages)
        result["server_naive"] = _naive(http, pid, naive_samples, count_queries=False)
        del result["server_naive"]["series"]  # the same answer as the test client's
        result["server_ratios"] = _ratios(result["server"], result["server_naive"])
        result["web"] = {"workers": web_workers, "threads": web_threads}
    # Cold requests queued regenerations that no bench worker is there to run.
    queue_purge("charts")
    return result
