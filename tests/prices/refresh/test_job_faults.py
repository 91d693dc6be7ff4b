"""Refresh jobs under faults, without a worker (the batches a dead worker would have held are run, or not,
by the test itself): a job never holds its lock past its own time budget, and values that cannot be prices
cost their own symbol only."""

from datetime import date
from decimal import Decimal

import pytest
from django.conf import settings
from django_redis import get_redis_connection

from core.jobs import job_fail, job_get, jobs_fail_stuck
from prices.models import PriceHistory
from prices.quote_cache import quotes_cache_get
from prices.refresh.jobs import LOCK_SECONDS, PLANNING_GRACE_SECONDS, prices_refresh_batch_run, prices_refresh_job_start
from prices.services import PricePoint, price_rows_upsert
from tests.factories import InstrumentFactory
from tests.stubs.market import Injected, MarketStub

pytestmark = pytest.mark.django_db(transaction=True)


def yahoo_instruments(count: int) -> list:
    return [InstrumentFactory(symbol=f"Y{n:03d}", provider="yahoo") for n in range(count)]


# --- a job never holds its lock past its own time budget ---------------------------------------------------


def test_a_job_failed_by_the_cleaner_frees_its_lock_within_its_own_budget_and_the_next_refresh_is_accepted(market):
    # given a refresh whose batches no worker will ever run (its worker died with them)
    yahoo_instruments(3)
    started = prices_refresh_job_start(force=True)
    job = job_get(job_id=started.job_id)
    # its deadline is its own budget: paced requests x 2 + one batch's time limit + 2 min, not 15 min
    assert job["deadline"] - job["created_at"] == pytest.approx(settings.CELERY_TASK_TIME_LIMIT + 120, abs=1.5)
    assert prices_refresh_job_start(force=True).already_running is True

    # when the stuck-job cleaner runs past that deadline
    assert jobs_fail_stuck(now=job["deadline"] + 1) == [started.job_id]

    # then the lock is free and the next refresh is accepted
    assert get_redis_connection("default").get("folio:lock:refresh-prices:all") is None
    again = prices_refresh_job_start(force=True)
    assert again.already_running is False and again.job_id != started.job_id


def test_a_lock_whose_job_expired_is_taken_over_by_the_next_refresh(market):
    # given the refresh lock held by a job whose progress is gone (expired, or Redis lost it), past the planning grace
    yahoo_instruments(2)
    client = get_redis_connection("default")
    client.set("folio:lock:refresh-prices:all", "vanished", ex=LOCK_SECONDS - PLANNING_GRACE_SECONDS - 1)

    started = prices_refresh_job_start(force=True)

    assert started.already_running is False
    assert client.get("folio:lock:refresh-prices:all") == started.job_id.encode()


def test_a_redelivered_batch_of_a_job_that_ended_is_not_fetched_again(market):
    instruments = yahoo_instruments(2)
    started = prices_refresh_job_start(lock_scope=None, instrument_ids=[i.pk for i in instruments])
    job_fail(job_id=started.job_id, reason="timed out")

    prices_refresh_batch_run(job_id=started.job_id, batch_id="0", provider="yahoo",
                             instrument_ids=[i.pk for i in instruments])

    assert market.quote_requests == []
    assert job_get(job_id=started.job_id)["done"] == 0


# --- values that cannot be prices --------------------------------------------------------------------------


def test_closes_outside_the_column_are_dropped_not_failing_the_rows_beside_them():
    instrument = InstrumentFactory(symbol="COL", provider="yahoo")
    day = date(2026, 3, 2)
    rows = [(instrument.pk, PricePoint(day.replace(day=n), close), "yahoo") for n, close in
            ((2, Decimal("1e30")), (3, Decimal("0")), (4, Decimal("NaN")), (5, Decimal("-1")),
             (6, Decimal("99999999999999.999999")), (9, Decimal("123.456789")))]
    rows.append((instrument.pk, PricePoint(date(2026, 3, 10), Decimal("10"), Decimal("1e20")), "yahoo"))

    written = price_rows_upsert(rows=rows)

    assert written == 2
    assert list(PriceHistory.objects.order_by("date").values_list("date", "close")) == [
        (date(2026, 3, 6), Decimal("99999999999999.999999")), (date(2026, 3, 9), Decimal("123.456789"))]


def test_a_quote_a_thousand_times_off_its_last_close_is_held_back_and_the_rest_of_the_batch_stored(market):
    # given two instruments with stored closes, and a provider answering 0.05 for one whose close was 100
    # (2,000 times lower) and a normal price for the other
    low, fine = yahoo_instruments(2)
    for instrument in (low, fine):
        PriceHistory.objects.create(instrument=instrument, date=date(2026, 1, 2), close=Decimal("100"), source="yahoo")
    market.injected[1] = Injected(200, MarketStub.quote_json({low.symbol: 0.05, fine.symbol: 101.5}))
    started = prices_refresh_job_start(lock_scope=None, instrument_ids=[low.pk, fine.pk], force=True)

    prices_refresh_batch_run(job_id=started.job_id, batch_id="0", provider="yahoo", instrument_ids=[low.pk, fine.pk])

    job = job_get(job_id=started.job_id)
    assert (job["state"], job["done"], job["failed"]) == ("SUCCESS", 1, 1)
    assert [e["error"] for e in job["errors"]] == [
        f"{low.symbol}: price 0.050000 held back: implausible against the last stored close 100.000000 "
        f"(more than 1,000× away)"]
    assert PriceHistory.objects.filter(instrument=low).count() == 1
    assert PriceHistory.objects.filter(instrument=fine).latest("date").close == Decimal("101.5")
    assert quotes_cache_get(symbols=[low.symbol, fine.symbol]).keys() == {fine.symbol}
