"""Process faults, for real: `kill -9` of workers mid-refresh, Redis crashing and restarting during a refresh,
two beats at once, database connections dropped under a running task.

Workers, beats and the web tier are real processes (`celery -A celery_app worker|beat`, gunicorn) on the test
database (transactional tests: the data is committed, so they see it) and on the test Redis database — or, for
the Redis restart, on a private redis-server of the test's own. The provider is MarketStub on loopback, slowed
down so that batches are in flight when the fault strikes.

Scale: CELERY_VISIBILITY_TIMEOUT is 3 s in every process here (600 s in production): a message a dead worker
held is handed out again that long after it was taken. See docs/RELIABILITY.md for what that means in production.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_redis import get_redis_connection

from monitoring.jobs import RECENT_KEY, TERMINAL, job_get
from prices.jobs import prices_refresh_job_start
from prices.models import Instrument, PriceHistory
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory, UserFactory
from tests.reliability.procs import (
    CeleryBeat,
    CeleryWorker,
    Gunicorn,
    PrivateRedis,
    child_env,
    database_url_of_test,
    free_port,
    wait_until,
)
from tests.stubs.market import MarketStub, stub_price

pytestmark = pytest.mark.django_db(transaction=True)

VISIBILITY = 3  # CELERY_VISIBILITY_TIMEOUT of the processes here (600 s in production)
# Seconds the stub takes per request: batches are in flight long enough to be hit, and every task still ends
# well within VISIBILITY (a task outliving it would be handed out twice — by design, see RELIABILITY.md).
LATENCY = 1.0
OLD = timezone.localdate() - timedelta(days=10)
LOCK_ALL = "folio:lock:refresh-prices:all"


@pytest.fixture
def logs(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def market() -> Iterator[MarketStub]:
    stub = MarketStub()
    with stub.running():
        yield stub


@pytest.fixture(autouse=True)
def no_leftover_tasks():
    """The suite's Redis cleaning keeps Kombu's unacked bookkeeping (an in-process worker may hold tasks);
    no such worker runs here, so whatever a killed process left must not be handed to a later test's worker."""
    yield
    get_redis_connection("default").delete("unacked", "unacked_index", "unacked_mutex", "prices", "charts",
                                           "default")


@pytest.fixture(autouse=True)
def planning(settings):
    """The test process plans the jobs it starts: Yahoo in batches of 2, paced only by the stub."""
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": 2}}


def worker_env(market: MarketStub, *, redis_url: str | None = None, **overrides: object) -> dict[str, str]:
    return child_env(
        redis_url=redis_url or django_settings.REDIS_URL,
        YAHOO_BASE_URL=market.url, YAHOO_REQUESTS_PER_SECOND=1000, YAHOO_BATCH_SIZE=2,
        PROVIDER_BACKOFF_INITIAL_SECONDS=0.01, PROVIDER_BACKOFF_MAX_SECONDS=0.05, CHART_DEBOUNCE_SECONDS=0,
        CELERY_VISIBILITY_TIMEOUT=VISIBILITY, **overrides)


def yahoo_instruments(count: int) -> list[Instrument]:
    """Yahoo instruments, each with a known close stored on OLD (100.01, 101.01, …)."""
    made = [InstrumentFactory(symbol=f"K{n:03d}", provider="yahoo") for n in range(count)]
    for n, instrument in enumerate(made):
        PriceFactory(instrument=instrument, date=OLD, close=Decimal("100.01") + n, source="yahoo")
    return made


def wait_job(job_id: str, *, timeout: float = 30) -> dict:
    return wait_until(lambda: (job := job_get(job_id=job_id)) and job["state"] in TERMINAL and job,
                      timeout=timeout, what=f"job {job_id} to end")


def assert_prices_exact(instruments: list[Instrument]) -> None:
    """Exactly two rows per instrument: the old close untouched, today's close exactly the provider's."""
    assert PriceHistory.objects.values("instrument", "date").annotate(n=Count("id")).filter(n__gt=1).count() == 0
    for n, instrument in enumerate(instruments):
        rows = list(PriceHistory.objects.filter(instrument=instrument).order_by("date").values_list("date", "close"))
        assert len(rows) == 2, rows
        assert rows[0] == (OLD, Decimal("100.01") + n)
        assert rows[1][1] == Decimal(stub_price(instrument.symbol))


def requests_per_symbol(market: MarketStub) -> Counter:
    return Counter(symbol for batch in market.quote_requests for symbol in batch)


# --- kill -9 ------------------------------------------------------------------------------------------------


def test_kill_9_of_a_whole_worker_mid_refresh_loses_nothing_and_counts_each_batch_once(market, logs):
    # given 8 instruments in 4 batches, a provider taking LATENCY a request, and a worker with 2 processes
    instruments = yahoo_instruments(8)
    market.latency = LATENCY
    env = worker_env(market)
    doomed = CeleryWorker("doomed", env=env, log_dir=logs, concurrency=2).start()
    try:
        job_id = prices_refresh_job_start(force=True).job_id
        wait_until(lambda: market.in_flight == 2, timeout=15, what="two batches in flight")

        # when the worker and its pool die at once, mid-request (the OOM killer, a lost machine)
        doomed.kill()
    finally:
        doomed.stop()
    # (the stub logs a request once it has slept its latency: these are the two killed batches)
    wait_until(lambda: len(market.quote_requests) == 2, timeout=5, what="the killed requests to be logged")
    in_flight = [symbol for batch in market.quote_requests for symbol in batch]
    assert job_get(job_id=job_id)["done"] == 0  # nothing was recorded for the killed batches
    # (their messages stay unacknowledged in Redis until the visibility timeout hands them out again)
    time.sleep(VISIBILITY + 0.5)

    with CeleryWorker("successor", env=env, log_dir=logs, concurrency=2).start():
        job = wait_job(job_id)

    # then the job completes with exact counts: each batch counted once, though two ran twice
    assert (job["state"], job["total"], job["done"], job["failed"], job["errors"]) == ("SUCCESS", 8, 8, 0, [])
    assert len(market.quote_requests) == 4 + 2
    assert requests_per_symbol(market) == Counter({s: 2 if s in in_flight else 1 for s in
                                                   (i.symbol for i in instruments)})
    assert_prices_exact(instruments)
    assert get_redis_connection("default").get(LOCK_ALL) is None  # the finisher released the refresh lock


def test_kill_9_of_a_pool_process_mid_batch_requeues_its_batch_at_once(market, logs):
    # given a worker whose two pool processes are each fetching a batch
    instruments = yahoo_instruments(8)
    market.latency = LATENCY
    with CeleryWorker("survivor", env=worker_env(market), log_dir=logs, concurrency=2).start() as worker:
        job_id = prices_refresh_job_start(force=True).job_id
        wait_until(lambda: market.in_flight == 2, timeout=15, what="two batches in flight")
        pool = worker.children()
        assert len(pool) == 2

        # when one pool process is killed mid-request (acks_late + reject_on_worker_lost: no visibility wait)
        os.kill(pool[0], signal.SIGKILL)
        job = wait_job(job_id, timeout=20)
        log = worker.log()

    assert f"pid:{pool[0]} exited with 'signal 9 (SIGKILL)'" in log
    assert (job["state"], job["total"], job["done"], job["failed"], job["errors"]) == ("SUCCESS", 8, 8, 0, [])
    assert len(market.quote_requests) == 4 + 1
    assert sorted(Counter(requests_per_symbol(market).values()).items()) == [(1, 6), (2, 2)]
    assert_prices_exact(instruments)


# --- Redis restarted during a refresh -----------------------------------------------------------------------


def test_redis_restarted_mid_refresh_web_stays_up_on_postgres_and_workers_reconnect(market, logs, api_token_for):
    # given a private Redis (append-only file, fsync always), a worker and gunicorn on it, and a portfolio
    # of 8 Yahoo holdings whose stored prices are 10 days old
    instruments = yahoo_instruments(8)
    staff = UserFactory(username="ops", is_staff=True)
    portfolio = PortfolioFactory(owner=staff, name="Ops")
    for instrument in instruments:
        TransactionFactory(portfolio=portfolio, instrument=instrument)
    web = requests.Session()
    web.headers["Authorization"] = f"Token {api_token_for(staff)}"
    market.latency = LATENCY

    with PrivateRedis(log_dir=logs).start() as private:
        env = worker_env(market, redis_url=private.url)
        with CeleryWorker("steady", env=env, log_dir=logs, concurrency=2).start() as worker, \
                Gunicorn(env=env, log_dir=logs).start() as gunicorn:
            api = gunicorn.url
            initial = web.get(f"{api}/api/dashboard-initial-data/{portfolio.pk}/", timeout=10)
            holdings = web.get(f"{api}/api/dashboard-holdings-data/{portfolio.pk}/", timeout=10)
            assert (initial.status_code, holdings.status_code) == (200, 200)
            # 10 shares each of closes 100.01, 101.01, …, 107.01
            assert (initial.json()["stale_count"], initial.json()["total_value"]) == (8, "8280.80")

            # the stale prices on the page queued a background refresh (stale-while-revalidate): that job is
            # the one Redis will crash under
            recent = redis.Redis.from_url(private.url)
            (job_id,) = wait_until(lambda: recent.zrange(RECENT_KEY, 0, -1), timeout=10, what="the refresh job")
            job_url = f"{api}/api/jobs/{job_id.decode()}/"
            wait_until(lambda: market.in_flight == 2, timeout=15, what="two batches in flight")

            # when Redis crashes with two batches in flight and two queued, and stays down 3 s
            private.kill()
            down_since = time.monotonic()
            during = {}
            while time.monotonic() - down_since < 3.0:
                for name, path in (("initial", f"/api/dashboard-initial-data/{portfolio.pk}/"),
                                   ("holdings", f"/api/dashboard-holdings-data/{portfolio.pk}/"),
                                   ("healthz", "/healthz")):
                    response = web.get(f"{api}{path}", timeout=10)
                    during.setdefault(name, set()).add(response.status_code)
                    during[f"{name}_body"] = response.json()
                time.sleep(0.2)

            # then the web tier kept answering from Postgres: same figures, degraded but up
            assert during["initial"] == {200} and during["holdings"] == {200} and during["healthz"] == {200}
            assert during["initial_body"] == initial.json()
            assert during["holdings_body"] == holdings.json()
            assert during["healthz_body"]["status"] == "degraded"
            assert during["healthz_body"]["checks"]["database"] == "ok"
            assert during["healthz_body"]["checks"]["redis"].startswith("down: ")

            # when Redis comes back with its append-only file
            private.start()

            # then the same worker reconnects, the unacknowledged batches are handed out again, and the job
            # completes with exact counts; the web tier answers from Redis again
            job = wait_until(lambda: (r := web.get(job_url, timeout=10)).status_code == 200
                             and r.json()["state"] in TERMINAL and r.json(), timeout=40, what="the job to end")
            assert worker.alive()
            after = web.get(f"{api}/healthz", timeout=10).json()
            final = web.get(f"{api}/api/dashboard-initial-data/{portfolio.pk}/", timeout=10).json()

    assert (job["state"], job["total"], job["done"], job["failed"]) == ("SUCCESS", 8, 8, 0)
    assert len(market.quote_requests) == 4 + 2
    assert_prices_exact(instruments)
    assert after["checks"]["redis"] == "ok"
    assert (final["stale_count"], final["total_value"]) == (
        0, str(sum((Decimal(stub_price(i.symbol)) * 10 for i in instruments), Decimal(0)).quantize(Decimal("0.01"))))


DASHBOARD_READS = {
    "initial": "/api/dashboard-initial-data/{id}/",
    "holdings": "/api/dashboard-holdings-data/{id}/",
    "chart": "/api/dashboard-chart-data/{id}/?range=1Y",
    "chart_progress": "/api/chart-generator-progress/{id}/",
}


@pytest.mark.parametrize("path", [
    DASHBOARD_READS["initial"], DASHBOARD_READS["holdings"],
    DASHBOARD_READS["chart"], DASHBOARD_READS["chart_progress"],
], ids=DASHBOARD_READS.keys())
def test_every_dashboard_read_answers_without_a_5xx_while_redis_is_unreachable(path, settings, api_client_for):
    # The same outage as above, in-process and for every dashboard endpoint: the cache's Redis is a closed port.
    owner = UserFactory(username="erin")
    portfolio = PortfolioFactory(owner=owner)
    TransactionFactory(portfolio=portfolio, instrument=yahoo_instruments(1)[0])
    client = api_client_for(owner)
    client.raise_request_exception = False  # a view's exception is the 500 a browser would get
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": dead}}

    response = client.get(path.format(id=portfolio.pk))

    assert response.status_code < 500, response.content[:300]


# --- beat started twice -------------------------------------------------------------------------------------


def test_beat_started_twice_makes_one_refresh_job_the_other_runs_are_refused_by_the_lock(market, logs):
    # given one Yahoo batch that takes 6 s, a worker, and the intraday refresh scheduled every second
    instruments = yahoo_instruments(2)
    market.latency = 6.0
    env = worker_env(market, REFRESH_INTERVAL_SECONDS=1, PROVIDER_TIMEOUT_SECONDS=10)
    recent = get_redis_connection("default")
    with CeleryWorker("beaten", env=env, log_dir=logs, pool="threads", concurrency=4).start() as worker:
        # when a first beat starts the refresh job, and a second beat is started while it runs
        with CeleryBeat("beat-a", env=env, log_dir=logs).start() as beat_a:
            wait_until(lambda: recent.zcard(RECENT_KEY) == 1, timeout=15, what="the first scheduled job")
            with CeleryBeat("beat-b", env=env, log_dir=logs).start() as beat_b:
                wait_until(lambda: beat_b.sent("prices.refresh_prices_job_task") >= 2, timeout=15,
                           what="the second beat to send the refresh twice")
        sent = beat_a.sent("prices.refresh_prices_job_task") + beat_b.sent("prices.refresh_prices_job_task")
        (job_id,) = [j.decode() for j in recent.zrange(RECENT_KEY, 0, -1)]
        job = wait_job(job_id, timeout=20)
        runs = wait_until(lambda: len(found := re.findall(
            r"Task prices\.refresh_prices_job_task\[[\w-]+\] succeeded in [\d.e-]+s: '(\w+)'", worker.log())) == sent
            and found, timeout=10, what="every refresh run sent to be run")

    # then every run of either beat answered with the one job; the provider was asked once
    assert beat_a.sent("prices.refresh_prices_job_task") >= 2 and sent >= 4
    assert set(runs) == {job_id}
    assert recent.zcard(RECENT_KEY) == 1
    assert (job["state"], job["total"], job["done"], job["failed"]) == ("SUCCESS", 2, 2, 0)
    assert market.quote_requests == [[i.symbol for i in instruments]]
    assert_prices_exact(instruments)


def test_two_refresh_runs_starting_at_the_same_instant_make_one_job():
    # Two beats (or two replicas of one) whose schedules coincide hand the worker two runs at once.
    yahoo_instruments(30)
    for _ in range(5):
        get_redis_connection("default").delete(LOCK_ALL, RECENT_KEY)
        started = two_runs_at_once()
        assert len({start.job_id for start in started}) == 1
        assert sorted(start.already_running for start in started) == [False, True]


def two_runs_at_once() -> list:
    barrier = threading.Barrier(2)
    started = []

    def run() -> None:
        barrier.wait()
        started.append(prices_refresh_job_start())
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return started


# --- database connections dropped ---------------------------------------------------------------------------

WORKER_APP = "folio_rel_worker"


def terminate_worker_backends() -> int:
    """pg_terminate_backend of the worker's connections (by their application_name) to this test database:
    what a Postgres restart or failover does to the connections it had."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE application_name = %s AND datname = current_database()", [WORKER_APP])
        return cursor.fetchone()[0]


def db_worker(market: MarketStub, logs: Path) -> CeleryWorker:
    url = f"{database_url_of_test()}?application_name={WORKER_APP}"
    return CeleryWorker("pg", env=worker_env(market, DATABASE_URL=url), log_dir=logs, concurrency=1)


def drop_connection_under_first_batch(market: MarketStub) -> str:
    """Start a job of 2 batches and kill the worker's database connection while the first is fetching."""
    market.latency = 1.0
    job_id = prices_refresh_job_start(force=True).job_id
    wait_until(lambda: market.in_flight == 1, timeout=15, what="the first batch in flight")
    assert terminate_worker_backends() == 1  # the task's own connection (Celery opens one per task)
    return job_id


def test_a_batch_whose_database_connection_drops_is_retried_and_its_job_ends_by_itself(market, logs):
    instruments = yahoo_instruments(4)
    with db_worker(market, logs).start():
        job_id = drop_connection_under_first_batch(market)
        job = wait_job(job_id, timeout=8)
    assert (job["state"], job["done"], job["failed"]) == ("SUCCESS", 4, 0)
    assert_prices_exact(instruments)
