"""Soak: the dashboard endpoints under steady concurrent load through the web server, while refresh jobs run one after
another on a real worker. Bounded (FOLIO_SOAK_SECONDS, default 90 s of load) and loopback only; `make soak`.

It asserts no errors, p95 held (overall, and the last third of the run against the first), every refresh job
exact, and the web processes' memory flat. The figures go to var/reliability/soak.json (docs/RELIABILITY.md).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from core.jobs import TERMINAL, job_get
from prices.models import PriceHistory
from prices.refresh.jobs import prices_refresh_job_start
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory, UserFactory
from tests.reliability.procs import ROOT, CeleryWorker, WebServer, child_env, rss_bytes, wait_until
from tests.stubs.market import MarketStub

pytestmark = [pytest.mark.soak, pytest.mark.django_db(transaction=True)]

SECONDS = float(os.environ.get("FOLIO_SOAK_SECONDS", "90"))
CLIENTS = 6  # concurrent browsers, each loading the dashboard's endpoints one after the other
HOLDINGS = 40  # 30 Yahoo (6 batches of 5) + 10 simulated (1 batch)
HISTORY_DAYS = 400
P95_LIMIT_MS = 500  # loopback, 2 cores: anything slower means a request did something it should not
P95_DRIFT = (2.0, 25)  # the last third's p95 may be at most 2× the first third's + 25 ms
WARMUP_SECONDS = 20  # full load before measuring: each worker imports, builds its calendars, fills its caches
# Per web process: median RSS of the last third of the run against the middle third (keep-alive pins clients to
# a worker, so one may still be warming up in the first third). The steady state saws by ±35 MB (chart payloads
# decoded per request, allocator arenas): a leak is what keeps climbing from one third to the next.
RSS_GROWTH_LIMIT = 24 * 1024 * 1024
RESULTS = ROOT / "var" / "reliability" / "soak.json"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def seed() -> tuple[object, object]:
    owner = UserFactory(username="soak")
    portfolio = PortfolioFactory(owner=owner, name="Soak")
    today = timezone.localdate()
    instruments = ([InstrumentFactory(symbol=f"SK{n:02d}", provider="yahoo") for n in range(30)]
                   + [InstrumentFactory(symbol=f"SM{n:02d}", provider="simulated") for n in range(10)])
    rows = []
    for n, instrument in enumerate(instruments):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=today - timedelta(days=HISTORY_DAYS),
                           quantity=Decimal(10 + n), price=Decimal("50"))
        TransactionFactory(portfolio=portfolio, instrument=instrument, type="SELL", quantity=Decimal(1),
                           price=Decimal("60"), date=date(today.year, 1, 2) if today.month > 1 else today)
        rows += [PriceHistory(instrument=instrument, date=today - timedelta(days=d), close=Decimal(50 + n + d % 7),
                              source=instrument.provider) for d in range(1, HISTORY_DAYS)]
    PriceHistory.objects.bulk_create(rows, batch_size=5000)
    return owner, portfolio


def test_soak_the_dashboard_while_refresh_jobs_run(tmp_path, settings, api_token_for):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": 5}}
    owner, portfolio = seed()
    endpoints = {
        "initial": f"/api/dashboard-initial-data/{portfolio.pk}/",
        "holdings": f"/api/dashboard-holdings-data/{portfolio.pk}/",
        "chart": f"/api/dashboard-chart-data/{portfolio.pk}/?range=1Y",
        "chart_progress": f"/api/chart-generator-progress/{portfolio.pk}/",
    }
    token = api_token_for(owner)
    market = MarketStub(latency=0.05)
    samples: list[tuple[float, str, int, float]] = []  # (started, endpoint, status, ms)
    failures: list[str] = []
    rss: dict[int, list[tuple[float, int]]] = defaultdict(list)
    jobs: list[dict] = []
    stop = threading.Event()

    with market.running():
        env = child_env(redis_url=django_settings.REDIS_URL, YAHOO_BASE_URL=market.url, YAHOO_BATCH_SIZE=5,
                        YAHOO_REQUESTS_PER_SECOND=1000, CHART_DEBOUNCE_SECONDS=1)
        with CeleryWorker("soak-worker", env=env, log_dir=tmp_path, concurrency=2).start(), \
                WebServer(env=env, log_dir=tmp_path, workers=2, threads=4).start() as web:

            def browse(measuring: threading.Event) -> None:
                session = requests.Session()
                session.headers["Authorization"] = f"Token {token}"
                while not stop.is_set():
                    for name, path in endpoints.items():
                        started = time.perf_counter()
                        try:
                            response = session.get(f"{web.url}{path}", timeout=10)
                            status = response.status_code
                        except requests.RequestException as error:
                            failures.append(f"{name}: {type(error).__name__}: {error}")
                            continue
                        ms = (time.perf_counter() - started) * 1000
                        if status not in (200, 202):
                            failures.append(f"{name}: HTTP {status} {response.text[:200]}")
                        if measuring.is_set():
                            samples.append((time.monotonic(), name, status, ms))

            def refresh() -> None:
                try:
                    while not stop.is_set():
                        job_id = prices_refresh_job_start(force=True, lock_scope=None).job_id
                        job = wait_until(lambda j=job_id: (x := job_get(job_id=j)) and x["state"] in TERMINAL and x,
                                         timeout=60, what="a refresh job")
                        jobs.append(job)
                        stop.wait(1.0)
                finally:
                    connection.close()  # this thread's own database connection

            def sample_memory() -> None:
                while not stop.is_set():
                    for pid in web.worker_pids():
                        rss[pid].append((time.monotonic(), rss_bytes(pid)))
                    stop.wait(2.0)

            # warm-up, jobs running already: each refresh makes every cached read obsolete, so both workers
            # compute valuations (and load what that needs) before anything is measured; the chart exists
            measuring = threading.Event()
            browsers = [threading.Thread(target=browse, args=(measuring,)) for _ in range(CLIENTS)]
            background = [threading.Thread(target=refresh)]
            for thread in browsers + background:
                thread.start()
            session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
            wait_until(lambda: session.get(f"{web.url}{endpoints['chart']}", timeout=10).status_code == 200,
                       timeout=30, interval=0.5, what="the first chart data")
            time.sleep(WARMUP_SECONDS)
            measuring.set()
            background.append(threading.Thread(target=sample_memory))
            background[-1].start()
            began = time.monotonic()
            time.sleep(SECONDS)
            stop.set()
            for thread in browsers + background:
                thread.join(timeout=70)
            ended = time.monotonic()
            worker_pids = web.worker_pids()

    # figures
    def rss_thirds(points: list[tuple[float, int]]) -> tuple[float, float, float]:
        thirds = ([v for at, v in points if at < began + SECONDS / 3],
                  [v for at, v in points if began + SECONDS / 3 <= at < began + 2 * SECONDS / 3],
                  [v for at, v in points if at >= began + 2 * SECONDS / 3])
        return tuple(percentile(third, 0.5) for third in thirds)

    by_endpoint: dict[str, list[float]] = defaultdict(list)
    thirds: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for at, name, _, ms in samples:
        by_endpoint[name].append(ms)
        if at < began + SECONDS / 3:
            thirds[name][0].append(ms)
        elif at >= began + 2 * SECONDS / 3:
            thirds[name][1].append(ms)
    figures = {
        "command": "make soak  (pytest -m soak tests/reliability/test_soak.py)",
        "finished_at": timezone.now().isoformat(timespec="seconds"),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {"seconds": SECONDS, "warmup_seconds": WARMUP_SECONDS, "clients": CLIENTS, "holdings": HOLDINGS,
                  "history_days": HISTORY_DAYS,
                  "web": "granian, 2 workers × 4 threads", "celery": "prefork, 2 processes",
                  "provider": "MarketStub on loopback, 50 ms a request"},
        "requests": len(samples),
        "requests_per_second": round(len(samples) / (ended - began), 1),
        "errors": len(failures),
        "endpoints": {
            name: {"count": len(values), "p50_ms": round(percentile(values, 0.5), 1),
                   "p95_ms": round(percentile(values, 0.95), 1), "p99_ms": round(percentile(values, 0.99), 1),
                   "max_ms": round(max(values), 1),
                   "p95_first_third_ms": round(percentile(thirds[name][0], 0.95), 1),
                   "p95_last_third_ms": round(percentile(thirds[name][1], 0.95), 1)}
            for name, values in sorted(by_endpoint.items())
        },
        "refresh_jobs": {"finished": len(jobs), "instruments_each": HOLDINGS,
                         "all_exact": all((j["state"], j["done"], j["failed"]) == ("SUCCESS", HOLDINGS, 0)
                                          for j in jobs)},
        "web_rss_mb": {
            str(pid): {"start": round(points[0][1] / 2**20, 1), "end": round(points[-1][1] / 2**20, 1),
                       "max": round(max(v for _, v in points) / 2**20, 1),
                       "median_by_third": [round(v / 2**20, 1) for v in rss_thirds(points)],
                       "every_2s": [round(v / 2**20) for _, v in points]}
            for pid, points in sorted(rss.items()) if pid in worker_pids
        },
        "limits": {"p95_ms": P95_LIMIT_MS, "p95_drift": f"last third ≤ {P95_DRIFT[0]}× first third + {P95_DRIFT[1]} ms",
                   "rss_growth_mb": RSS_GROWTH_LIMIT / 2**20,
                   "rss_measure": "median of the last third minus median of the middle third, per worker"},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))

    assert failures == [], failures[:10]
    assert set(by_endpoint) == set(endpoints) and len(samples) > 100 * SECONDS / 10
    for name, stats in figures["endpoints"].items():
        assert stats["p95_ms"] < P95_LIMIT_MS, (name, stats)
        assert stats["p95_last_third_ms"] <= P95_DRIFT[0] * stats["p95_first_third_ms"] + P95_DRIFT[1], (name, stats)
    assert len(jobs) >= 3 and figures["refresh_jobs"]["all_exact"], jobs
    assert len(figures["web_rss_mb"]) == 2  # no worker was replaced (a crash would)
    for pid, points in rss.items():
        if pid in worker_pids:
            _, middle, last = rss_thirds(points)
            assert last - middle <= RSS_GROWTH_LIMIT, (pid, figures["web_rss_mb"][str(pid)])
    assert Path(RESULTS).exists()
