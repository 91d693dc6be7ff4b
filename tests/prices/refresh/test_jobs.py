"""Price refresh jobs through a real Celery worker, a real Redis broker and a loopback Yahoo."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django_redis import get_redis_connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.jobs import job_create, job_get
from prices.models import Instrument, PriceHistory
from prices.providers.gateway import PriceService
from prices.providers.twelvedata import TwelveDataProvider
from prices.refresh.jobs import (
    LOCK_SECONDS,
    PLANNING_GRACE_SECONDS,
    JobStart,
    prices_refresh_batch_run,
    prices_refresh_job_start,
    refresh_deadline_seconds,
)
from prices.refresh.plan import refresh_plan, refreshable_instruments
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory
from tests.stubs.market import MarketStub, stub_price

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def market(market: MarketStub, settings) -> MarketStub:
    """The refresh tests' market (conftest.py), with millisecond backoff."""
    settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.05
    return market


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def staff_client() -> APIClient:
    return client_for(get_user_model().objects.create_user("ops", password="x", is_staff=True))


def wait_for_job(client: APIClient, progress_url: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(progress_url).json()
        if job["state"] in ("SUCCESS", "FAILURE"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job still {job['state']} after {timeout} s: {job}")


def yahoo_instruments(count: int) -> list:
    return [InstrumentFactory(symbol=f"Y{n:03d}", provider="yahoo") for n in range(count)]


def test_a_refresh_through_the_worker_ends_success_with_exact_counts(worker, market):
    yahoo_instruments(120)
    client = staff_client()

    response = client.post("/api/prices/refresh/")

    assert response.status_code == 202
    body = response.json()
    assert body["progress_url"] == f"/api/jobs/{body['job_id']}/"
    job = wait_for_job(client, body["progress_url"])
    assert (job["state"], job["total"], job["done"], job["failed"], job["percent"]) == ("SUCCESS", 120, 120, 0, 100.0)
    assert job["errors"] == []
    assert sorted(len(batch) for batch in market.quote_requests) == [20, 50, 50]
    assert PriceHistory.objects.count() == 120
    assert PriceHistory.objects.get(instrument__symbol="Y042").close == Decimal(stub_price("Y042"))

    # A second run finds every quote still fresh: no request, nothing to count.
    again = wait_for_job(client, client.post("/api/prices/refresh/").json()["progress_url"])
    assert (again["state"], again["total"], again["skipped"]) == ("SUCCESS", 0, 120)
    assert len(market.quote_requests) == 3


def test_a_batch_that_keeps_failing_is_counted_failed_and_the_rest_stored(worker, market):
    instruments = yahoo_instruments(120)
    bad = instruments[60]
    PriceHistory.objects.create(instrument=bad, date=date(2026, 1, 2), close=Decimal("99.99"), source="yahoo")
    market.failing_symbols = {bad.symbol}
    client = staff_client()

    job = wait_for_job(client, client.post("/api/prices/refresh/").json()["progress_url"])

    assert (job["state"], job["total"], job["done"], job["failed"]) == ("SUCCESS", 120, 70, 50)
    assert len(job["errors"]) == 50
    assert any(e["error"].startswith(f"{bad.symbol}: TransientError") for e in job["errors"])
    assert PriceHistory.objects.filter(date__gt=date(2026, 1, 2)).count() == 70
    # the failed batch's stored price is untouched
    assert PriceHistory.objects.get(instrument=bad).close == Decimal("99.99")


def test_a_redelivered_batch_does_not_double_count(market):
    instruments = yahoo_instruments(3)
    started = prices_refresh_job_start(lock_scope=None, instrument_ids=[i.pk for i in instruments])
    # No worker runs in this test: the queued task is the one a dead worker would have held.
    ids = [i.pk for i in instruments]
    prices_refresh_batch_run(job_id=started.job_id, batch_id="0", provider="yahoo", instrument_ids=ids)
    prices_refresh_batch_run(job_id=started.job_id, batch_id="0", provider="yahoo", instrument_ids=ids)
    job = job_get(job_id=started.job_id)
    assert (job["state"], job["done"], job["failed"]) == ("SUCCESS", 3, 0)
    assert PriceHistory.objects.count() == 3


def test_overlapping_runs_are_refused_by_the_lock(worker, market):
    market.latency = 0.3
    yahoo_instruments(10)
    first = prices_refresh_job_start()
    second = prices_refresh_job_start()
    assert (second.job_id, second.already_running) == (first.job_id, True)
    client = staff_client()
    wait_for_job(client, f"/api/jobs/{first.job_id}/")
    third = prices_refresh_job_start(force=True)
    assert third.job_id != first.job_id and third.already_running is False
    wait_for_job(client, f"/api/jobs/{third.job_id}/")


def test_users_refresh_their_own_instruments_and_see_only_their_jobs(worker, market):
    alice, bob = (get_user_model().objects.create_user(name, password="x") for name in ("alice", "bob"))
    mine, theirs = yahoo_instruments(2)
    TransactionFactory(portfolio=PortfolioFactory(owner=alice), instrument=mine)
    TransactionFactory(portfolio=PortfolioFactory(owner=bob), instrument=theirs)
    as_alice, as_bob = client_for(alice), client_for(bob)

    body = as_alice.post("/api/prices/refresh/").json()
    job = wait_for_job(as_alice, body["progress_url"])

    assert (job["total"], job["done"]) == (1, 1)
    assert market.quote_requests == [[mine.symbol]]
    assert as_bob.get(body["progress_url"]).status_code == 404
    assert staff_client().get(body["progress_url"]).status_code == 200
    assert as_alice.get("/api/jobs/does-not-exist/").status_code == 404
    assert APIClient().post("/api/prices/refresh/").status_code == 401


def test_refresh_prices_queues_a_job_and_follows_it_to_the_end(worker, market):
    yahoo_instruments(60)
    out, err = StringIO(), StringIO()
    call_command("refresh_prices", "--provider", "yahoo", stdout=out, stderr=err)
    assert out.getvalue().startswith("Refresh job ")
    assert "Refresh success: 60 refreshed." in out.getvalue()
    assert "Instruments" in err.getvalue() and "60/60" in err.getvalue()  # the progress bar
    listing = StringIO()
    call_command("jobs", stdout=listing)
    assert "refresh_prices  SUCCESS      60      0     60" in listing.getvalue()


def test_a_lock_left_by_an_ended_job_is_taken_over_by_exactly_one_of_many_concurrent_starts(market):
    # given the refresh lock still held by a job that ended (its finisher died before releasing it)
    yahoo_instruments(4)
    client = get_redis_connection("default")
    ended = job_create(kind="refresh_prices", total=0, batches=0, owner_id=None, deadline_seconds=60)
    client.set("folio:lock:refresh-prices:all", ended, ex=LOCK_SECONDS - PLANNING_GRACE_SECONDS - 5)

    # when eight refreshes start at the same moment
    barrier = threading.Barrier(8)

    def start() -> JobStart:
        barrier.wait()
        try:
            return prices_refresh_job_start(force=True)
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        started = list(pool.map(lambda _: start(), range(8)))

    # then one of them took the lock over and planned a job; the seven others joined it
    new = [s for s in started if not s.already_running]
    assert len(new) == 1
    assert {s.job_id for s in started} == {new[0].job_id}
    assert client.get("folio:lock:refresh-prices:all") == new[0].job_id.encode()


def test_a_jobs_deadline_leaves_time_for_credits_charged_per_symbol(settings):
    # given 1,000 Twelve Data instruments on a paid plan: 55 credits a minute, batches of 50 (a credit a symbol)
    settings.PROVIDER_LIMITS = {"twelvedata": {"requests_per_second": 55 / 60, "daily_quota": 5000, "batch_size": 50}}
    Instrument.objects.bulk_create([Instrument(symbol=f"TD{n:04d}", provider="twelvedata",
                                               verification_status="verified") for n in range(1000)])
    provider = TwelveDataProvider(base_url="http://127.0.0.1:9", api_key="K")  # planning asks nothing
    service = PriceService(providers=lambda name: provider)
    plan = refresh_plan(instruments=refreshable_instruments(), force=True, service=service)
    # then the job may run as long as its 1,000 credits take at 55 a minute (20 requests counted as 20 credits
    # gave it ~520 s: failed by the stuck-job cleaner halfway, its lock freed, the rest queued again)
    assert refresh_deadline_seconds(service, plan.batches) >= 1000 / (55 / 60)
