"""Process faults, for real: `kill -9` of workers mid-refresh, Redis crashing and restarting during a refresh,
two beats at once, database connections dropped under a running task.

Workers, beats and the web tier are real processes (`celery -A celery_app worker|beat`, the Procfile's web command)
on the test database (transactional tests: the data is committed, so they see it) and on the test Redis database —
or, for the Redis restart, on a private redis-server of the test's own. The provider is MarketStub on loopback, slowed
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
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import redis
import requests
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django_redis import get_redis_connection
from redbeat import RedBeatSchedulerEntry

from celery_app import app
from charts.cache import chart_data_get, chart_progress_get
from charts.services import chart_regeneration_request
from core.jobs import RECENT_KEY, TERMINAL, job_get
from monitoring.events import events_flush
from monitoring.models import MonitoringEvent
from monitoring.tasks import jobs_clean_task
from prices.models import Instrument, PriceHistory
from prices.refresh.jobs import prices_refresh_job_start
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory, UserFactory
from tests.reliability.procs import (
    CeleryBeat,
    CeleryWorker,
    PrivatePostgres,
    PrivateRedis,
    WebServer,
    child_env,
    database_url_of_test,
    free_port,
    wait_until,
)
from tests.stubs.market import Injected, MarketStub, stub_price

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
    return child_env(redis_url=redis_url or django_settings.REDIS_URL, **{
        "YAHOO_BASE_URL": market.url, "YAHOO_REQUESTS_PER_SECOND": 1000, "YAHOO_BATCH_SIZE": 2,
        "PROVIDER_BACKOFF_INITIAL_SECONDS": 0.01, "PROVIDER_BACKOFF_MAX_SECONDS": 0.05, "CHART_DEBOUNCE_SECONDS": 0,
        "CELERY_VISIBILITY_TIMEOUT": VISIBILITY,
        # These tests count every tick's "Sending due task" and "succeeded" lines: housekeeping ones included.
        "HOUSEKEEPING_LOG_LEVEL": "INFO", **overrides})


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
    # given a private Redis (append-only file, fsync always), a worker and the web server on it, and a portfolio
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
                WebServer(env=env, log_dir=logs).start() as server:
            api = server.url
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

            # when Redis crashes with two batches in flight and two queued, and stays down at least 3 s — and
            # until those two batches have stored their answers, however slow a loaded machine makes that (20 s
            # at most: the assertions below then say what was missing)
            private.kill()
            down_since = time.monotonic()
            during = {}

            def in_flight_stored() -> bool:
                return during.get("initial_body", {}).get("stale_count") == 4

            while time.monotonic() - down_since < 3.0 or (
                    not in_flight_stored() and time.monotonic() - down_since < 20.0):
                for name, path in (("initial", f"/api/dashboard-initial-data/{portfolio.pk}/"),
                                   ("holdings", f"/api/dashboard-holdings-data/{portfolio.pk}/"),
                                   ("healthz", "/healthz")):
                    response = web.get(f"{api}{path}", timeout=10)
                    during.setdefault(name, set()).add(response.status_code)
                    during[f"{name}_body"] = response.json()
                time.sleep(0.2)

            # then the web tier kept answering from Postgres, degraded but up: at the end of the outage with the
            # prices the two batches in flight stored meanwhile (their answers are not lost with Redis)
            assert during["initial"] == {200} and during["holdings"] == {200} and during["healthz"] == {200}
            in_flight = {i.symbol for i in instruments[:4]}
            assert (during["initial_body"]["stale_count"], during["initial_body"]["total_value"]) == (
                4, value_of(instruments, fresh=in_flight))
            assert {h["symbol"] for h in during["holdings_body"]["holdings"] if not h["stale"]} == in_flight
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
    # the in-flight batches were redelivered after the restart, found counted, and not fetched again
    assert len(market.quote_requests) == 4
    assert_prices_exact(instruments)
    assert after["checks"]["redis"] == "ok"
    everything = {i.symbol for i in instruments}
    assert (final["stale_count"], final["total_value"]) == (0, value_of(instruments, fresh=everything))


def value_of(instruments: list[Instrument], *, fresh: set[str]) -> str:
    """10 shares of each: at the provider's price when `fresh`, at the old stored close otherwise."""
    total = sum((Decimal(stub_price(i.symbol)) if i.symbol in fresh else Decimal("100.01") + n) * 10
                for n, i in enumerate(instruments))
    return str(Decimal(total).quantize(Decimal("0.01")))


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

PERIODIC = {name: entry["task"] for name, entry in django_settings.CELERY_BEAT_SCHEDULE.items()}


def all_entries_due_now() -> None:
    """Every beat entry as if it last ran in 2000, so the first tick of a beat sends all of them (RedBeat keeps
    an entry's last run in Redis and a starting beat keeps it)."""
    for name, entry in django_settings.CELERY_BEAT_SCHEDULE.items():
        saved = RedBeatSchedulerEntry(name, entry["task"], entry["schedule"], kwargs=entry.get("kwargs"),
                                      options=entry.get("options"), app=app).save()
        saved.reschedule(last_run_at=datetime(2000, 1, 1, tzinfo=UTC))


def runs_of(worker: CeleryWorker, task: str) -> list[str]:
    """What each run of `task` returned, from the worker's log."""
    return re.findall(rf"Task {re.escape(task)}\[[\w-]+\] succeeded in [\d.e-]+s: (.*)", worker.log())


def test_two_beats_started_together_one_sends_the_other_waits_for_its_lock(market, logs):
    # given two Yahoo instruments, a worker, and every periodic entry due (the refresh every 30 s, so once here)
    instruments = yahoo_instruments(2)
    all_entries_due_now()
    env = worker_env(market, REFRESH_INTERVAL_SECONDS=30, CELERY_BEAT_MAX_LOOP_INTERVAL=1,
                     CELERY_REDBEAT_LOCK_TIMEOUT=3)
    recent = get_redis_connection("default")
    with CeleryWorker("beaten", env=env, log_dir=logs, pool="threads", concurrency=4).start() as worker:
        # when two beat processes start in the same instant (RedBeat, as the Procfile runs it)
        beats = [CeleryBeat("beat-a", env=env, log_dir=logs), CeleryBeat("beat-b", env=env, log_dir=logs)]
        for beat in beats:
            beat.start()
        try:
            holder = wait_until(lambda: [b for b in beats if b.holds_lock() and b.sent(PERIODIC["fail-stuck-jobs"])],
                                timeout=30, what="one beat to take the lock and tick")[0]
            waiting = next(b for b in beats if b is not holder)
            (job_id,) = wait_until(lambda: [j.decode() for j in recent.zrange(RECENT_KEY, 0, -1)], timeout=15,
                                   what="the refresh job")
            job = wait_job(job_id, timeout=20)
            # (a beat logs "Sending due task" just before it publishes: wait until what it sent has run)
            def ran_as_sent() -> tuple[dict, dict] | None:
                sent = {name: holder.log().count(f"Sending due task {name} ") for name in PERIODIC}
                runs = {name: runs_of(worker, task) for name, task in PERIODIC.items()}
                return (sent, runs) if all(sent.values()) and {n: len(r) for n, r in runs.items()} == sent else None

            sent, runs = wait_until(ran_as_sent, timeout=15, what="every periodic task to run once per send")
            # then the other beat waits for the lock: it has started, and sends nothing at all
            assert "beat: Starting..." in waiting.log()
            assert not waiting.holds_lock() and "Sending due task" not in waiting.log()

            # when the holder stops, the waiting beat takes the lock over
            holder.stop()
            wait_until(waiting.holds_lock, timeout=15, what="the waiting beat to take the lock over")
        finally:
            for beat in beats:
                beat.stop()

    # each entry was sent by one beat, and run once per send; one refresh job, one provider request
    assert sent["refresh-prices-intraday"] == 1
    assert runs["refresh-prices-intraday"] == [f"'{job_id}'"]
    assert recent.zcard(RECENT_KEY) == 1
    assert (job["state"], job["total"], job["done"], job["failed"]) == ("SUCCESS", 2, 2, 0)
    assert market.quote_requests == [[i.symbol for i in instruments]]
    assert_prices_exact(instruments)


def test_two_beats_without_a_lock_still_run_each_tick_once(market, logs):
    # given two beats of the old kind: file-based schedules, no lock (what a second `celery beat` without
    # RedBeat does), the refresh every 8 s and a provider taking 2 s
    instruments = yahoo_instruments(2)
    market.latency = 2.0
    env = worker_env(market, REFRESH_INTERVAL_SECONDS=8)
    recent = get_redis_connection("default")
    with CeleryWorker("ticked", env=env, log_dir=logs, pool="threads", concurrency=4).start() as worker:
        # when both start together and each sends every entry at every tick
        beats = [CeleryBeat(name, env=env, log_dir=logs, scheduler="celery.beat:PersistentScheduler")
                 for name in ("plain-a", "plain-b")]
        for beat in beats:
            beat.start()
        try:
            wait_until(lambda: all(b.sent(PERIODIC["refresh-prices-intraday"]) == 1 for b in beats)
                       and all(b.sent(PERIODIC["flush-events"]) >= 1 for b in beats), timeout=30,
                       what="both beats to send the refresh and the events flush")
            # (a beat logs "Sending due task" just before it publishes: stop it only once the worker has the
            # messages; the next tick is seconds away)
            wait_until(lambda: worker.log().count("Task prices.refresh_prices_job_task[") // 2 == 2
                       and worker.log().count("Task monitoring.events_flush_task[") // 2
                       == sum(b.sent(PERIODIC["flush-events"]) for b in beats), timeout=10,
                       what="the worker to run every message sent")
        finally:
            for beat in beats:
                beat.stop()
        sent = {name: [b.log().count(f"Sending due task {name} ") for b in beats] for name in PERIODIC}
        (job_id,) = [j.decode() for j in recent.zrange(RECENT_KEY, 0, -1)]
        job = wait_job(job_id, timeout=20)
        wait_until(lambda: sum(len(runs_of(worker, PERIODIC[name])) for name in ("refresh-prices-intraday",
                   "flush-events")) == sum(sent["refresh-prices-intraday"] + sent["flush-events"]), timeout=15,
                   what="every run sent to be run")
        duplicates = {name: worker.log().count(f"periodic {name}: this tick") for name in PERIODIC}

    # then every tick was sent twice and run once: the second run of each did nothing
    assert sent["refresh-prices-intraday"] == [1, 1]
    for name in ("refresh-prices-intraday", "flush-events"):
        assert duplicates[name] == sum(sent[name]) - max(sent[name]), (name, sent[name])
    assert sorted(runs_of(worker, PERIODIC["refresh-prices-intraday"])) == sorted([f"'{job_id}'", "None"])
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


# --- Redis killed mid-job: the job completes by itself ------------------------------------------------------


def test_redis_killed_mid_refresh_the_job_completes_by_itself_frees_its_lock_and_the_next_refresh_is_accepted(
        market, logs, api_token_for):
    # given a private Redis, the web server, and a worker whose unacknowledged tasks would come back only after 600 s
    # (production's visibility timeout: no redelivery rescues a batch here), and a staff refresh of 8
    # instruments in 4 batches, 2 of them in flight
    instruments = yahoo_instruments(8)
    web = requests.Session()
    web.headers["Authorization"] = f"Token {api_token_for(UserFactory(username='ops', is_staff=True))}"
    market.latency = LATENCY
    with PrivateRedis(log_dir=logs).start() as private:
        env = worker_env(market, redis_url=private.url, CELERY_VISIBILITY_TIMEOUT=600)
        with CeleryWorker("outlived", env=env, log_dir=logs, concurrency=2).start() as worker, \
                WebServer(env=env, log_dir=logs).start() as server:
            started = web.post(f"{server.url}/api/prices/refresh/", timeout=10).json()
            assert started["already_running"] is False
            wait_until(lambda: market.in_flight == 2, timeout=15, what="two batches in flight")

            # when Redis is killed under them and comes back (append-only file) 5 s later
            private.kill()
            time.sleep(5)
            private.start()

            # then the job completes by itself, with exact counts, and its lock is free
            job = wait_until(lambda: (r := web.get(f"{server.url}{started['progress_url']}", timeout=10))
                             .status_code == 200 and r.json()["state"] in TERMINAL and r.json(), timeout=40,
                             what="the job to end")
            lock = redis.Redis.from_url(private.url).get(LOCK_ALL)
            # and the next refresh is accepted (everything is fresh: a job with nothing to fetch)
            again = web.post(f"{server.url}/api/prices/refresh/", timeout=10).json()
            assert worker.alive()

    assert (job["state"], job["total"], job["done"], job["failed"], job["errors"]) == ("SUCCESS", 8, 8, 0, [])
    assert lock is None
    assert again["already_running"] is False and again["job_id"] != started["job_id"]
    # each batch asked the provider once: the in-flight answers were kept through the outage
    assert len(market.quote_requests) == 4
    assert requests_per_symbol(market) == Counter({i.symbol: 1 for i in instruments})
    assert_prices_exact(instruments)


# --- an absurd price ----------------------------------------------------------------------------------------


def test_an_absurd_quote_costs_its_own_symbol_not_its_batch_and_the_job_ends(market, logs):
    # given two instruments in one batch, and the provider answering 1e30 for the first and a real price for
    # the second
    bad, good = yahoo_instruments(2)
    market.injected[1] = Injected(200, MarketStub.quote_json({bad.symbol: 1e30,
                                                             good.symbol: float(stub_price(good.symbol))}))

    # when a refresh runs on a real worker
    with CeleryWorker("absurd", env=worker_env(market), log_dir=logs, concurrency=1).start():
        started = prices_refresh_job_start(force=True)
        job = wait_job(started.job_id, timeout=20)
    events_flush()

    # then the neighbour's quote is stored, the absurd one is that symbol's failure, and the job ended
    assert (job["state"], job["total"], job["done"], job["failed"]) == ("SUCCESS", 2, 1, 1)
    (error,) = [e["error"] for e in job["errors"]]
    assert re.fullmatch(rf"{bad.symbol}: price 1\.0+E\+30 held back: not a price \(a close is above 0 and below "
                        r"1e\+14\)", error), error
    rows = list(PriceHistory.objects.filter(instrument=good).order_by("date").values_list("date", "close"))
    assert (len(rows), rows[0], rows[1][1]) == (2, (OLD, Decimal("101.01")), Decimal(stub_price(good.symbol)))
    assert list(PriceHistory.objects.filter(instrument=bad).values_list("date", "close")) == [(OLD, Decimal("100.01"))]
    assert MonitoringEvent.objects.filter(kind="provider_error", context__symbol=bad.symbol,
                                          context__reason="implausible_price").count() == 1
    assert get_redis_connection("default").get(LOCK_ALL) is None
    assert market.quote_requests == [[bad.symbol, good.symbol]]
    # and the next refresh is accepted
    assert prices_refresh_job_start(force=True).already_running is False


# --- Postgres stopped mid-refresh ---------------------------------------------------------------------------


def test_postgres_stopped_mid_refresh_the_fetched_quotes_are_stored_once_it_is_back(market, logs):
    # given a private Postgres cluster holding a copy of the test database (8 instruments, 4 batches), and a
    # worker on it with two batches in flight
    instruments = yahoo_instruments(8)
    market.latency = 1.5
    with PrivatePostgres().init() as pg:
        url = pg.copy_database(source_url=database_url_of_test())
        env = worker_env(market, DATABASE_URL=url, REFRESH_DB_RETRY_SECONDS=60)
        with CeleryWorker("pg-outage", env=env, log_dir=logs, concurrency=2).start():
            job_id = prices_refresh_job_start(force=True).job_id
            wait_until(lambda: market.in_flight == 2, timeout=15, what="two batches in flight")

            # when Postgres stops (every connection terminated) for 10 s, longer than the old 1+2+4 s retries
            pg.stop()
            time.sleep(10)
            assert job_get(job_id=job_id)["state"] not in TERMINAL
            pg.start()

            # then the quotes fetched before the outage are stored once it is back, without asking again
            job = wait_job(job_id, timeout=40)
        rows = pg.query("SELECT i.symbol, p.date, p.close FROM prices_pricehistory p "
                        "JOIN prices_instrument i ON i.id = p.instrument_id ORDER BY i.symbol, p.date")

    assert (job["state"], job["total"], job["done"], job["failed"], job["errors"]) == ("SUCCESS", 8, 8, 0, [])
    assert requests_per_symbol(market) == Counter({i.symbol: 1 for i in instruments})
    expected = []
    for n, instrument in enumerate(instruments):
        expected += [(instrument.symbol, OLD, Decimal("100.01") + n), (instrument.symbol, ANY_DAY,
                                                                          Decimal(stub_price(instrument.symbol)))]
    assert rows == expected


class _AnyDay:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, date) and other > OLD


ANY_DAY = _AnyDay()


# --- a pool process killed mid-chart ------------------------------------------------------------------------


def test_a_pool_process_killed_mid_chart_is_failed_requeued_by_the_cleaner_and_the_chart_completes(
        market, logs, settings):
    # given a portfolio, a worker with one pool process, and its chart generation held inside its first step
    # (the transactions table locked by the test)
    settings.CHART_DEBOUNCE_SECONDS = 0
    owner = UserFactory(username="charlie")
    portfolio = PortfolioFactory(owner=owner)
    TransactionFactory(portfolio=portfolio, instrument=yahoo_instruments(1)[0])
    env = worker_env(market, CHART_GENERATION_STUCK_SECONDS=3)
    with CeleryWorker("charts", env=env, log_dir=logs, concurrency=1).start() as worker:
        with psycopg.connect(database_url_of_test()) as blocker:
            blocker.execute("LOCK TABLE portfolio_transaction IN ACCESS EXCLUSIVE MODE")
            assert chart_regeneration_request(portfolio_ids=[portfolio.pk]) == [portfolio.pk]
            wait_until(lambda: (p := chart_progress_get(portfolio_id=portfolio.pk)) and p["state"] == "PROGRESS",
                       timeout=15, what="the generation to start")

            # when its pool process is killed mid-generation
            (child,) = worker.children()
            os.kill(child, signal.SIGKILL)
            wait_until(lambda: f"pid:{child} exited with 'signal 9 (SIGKILL)'" in worker.log(), timeout=15,
                       what="the worker to see its pool process die")
            blocker.rollback()
        stuck = chart_progress_get(portfolio_id=portfolio.pk)
        assert (stuck["state"], stuck["done"], stuck["total"]) == ("PROGRESS", 0, 3)

        # and the stuck-job cleaner runs once the progress has not moved for 3 s
        time.sleep(3.5)
        cleaned = jobs_clean_task.apply_async().get(timeout=20)

        # then it failed and queued the generation again, and the chart completes
        done = wait_until(lambda: (p := chart_progress_get(portfolio_id=portfolio.pk)) and p["state"] == "SUCCESS"
                          and p, timeout=20, what="the chart to complete")
    assert cleaned["charts"] == [portfolio.pk]
    assert (done["done"], done["total"]) == (3, 3)
    portfolio.refresh_from_db()
    assert chart_data_get(portfolio_id=portfolio.pk)["version"] == portfolio.history_version
