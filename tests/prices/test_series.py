"""The packed close series (prices/series.py) stay the mirror of the price rows, whoever writes them."""

from datetime import date
from decimal import Decimal as D

import numpy as np
import pytest
from django.db import connection, transaction

from prices.models import PriceHistory, PriceSeries
from prices.series import price_series_load
from tests.concurrency import transactions_at_once
from tests.factories import InstrumentFactory, PriceFactory, closes_upsert

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the series are kept on Postgres")


def _series(instrument, start=date(1900, 1, 1)) -> list[tuple[str, int]]:
    ids, days, micros = price_series_load(instrument_ids=[instrument.pk], start=start)
    assert set(ids.tolist()) <= {instrument.pk}
    return list(zip(days.astype("M8[D]").astype(str).tolist(), micros.tolist(), strict=True))


def _rows(instrument) -> list[tuple[str, int]]:
    return [(day.isoformat(), int(close * 1_000_000))
            for day, close in PriceHistory.objects.filter(instrument=instrument).order_by("date")
            .values_list("date", "close")]


@pytest.mark.django_db(transaction=True)
def test_a_new_day_is_appended_in_the_upserts_transaction():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 12, 30): "100.5", date(2024, 12, 31): "101"})
    with transaction.atomic():
        closes_upsert(aapl, {date(2025, 1, 2): "102.123456"})
        # Seen inside the writing transaction already ...
        assert _series(aapl)[-1] == ("2025-01-02", 102_123_456)
    assert _series(aapl) == [("2024-12-30", 100_500_000), ("2024-12-31", 101_000_000),
                             ("2025-01-02", 102_123_456)]
    # ... and one row per calendar year.
    assert list(PriceSeries.objects.filter(instrument=aapl).values_list("year", flat=True).order_by("year")) == [
        2024, 2025]


@pytest.mark.django_db(transaction=True)
def test_a_write_rolled_back_leaves_the_series_as_they_were():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 1, 2): "100"})
    with pytest.raises(RuntimeError), transaction.atomic():
        closes_upsert(aapl, {date(2024, 1, 3): "101"})
        raise RuntimeError
    assert _series(aapl) == [("2024-01-02", 100_000_000)]


@pytest.mark.django_db(transaction=True)
def test_a_backfill_of_earlier_dates_and_a_correction_of_a_past_close_update_the_series():
    aapl = InstrumentFactory(symbol="AAPL")
    msft = InstrumentFactory(symbol="MSFT")
    closes_upsert(aapl, {date(2024, 3, 1): "100", date(2024, 3, 4): "101", date(2025, 6, 2): "150"})
    closes_upsert(msft, {date(2024, 3, 1): "300"})

    # A backfill inserts years before the first close ...
    closes_upsert(aapl, {date(2022, 12, 30): "80", date(2023, 1, 3): "81.5"})
    assert _series(aapl) == [("2022-12-30", 80_000_000), ("2023-01-03", 81_500_000), ("2024-03-01", 100_000_000),
                             ("2024-03-04", 101_000_000), ("2025-06-02", 150_000_000)]
    # ... a provider corrects a past close, and a staff member another one by hand (no service on the way).
    closes_upsert(aapl, {date(2024, 3, 4): "101.25"})
    PriceHistory.objects.filter(instrument=aapl, date=date(2024, 3, 1)).update(close=D("99.999999"))
    assert _series(aapl) == [("2022-12-30", 80_000_000), ("2023-01-03", 81_500_000), ("2024-03-01", 99_999_999),
                             ("2024-03-04", 101_250_000), ("2025-06-02", 150_000_000)]
    # A day filled in between, and a row deleted.
    PriceFactory(instrument=aapl, date=date(2024, 3, 2), close=D("100.5"))
    PriceHistory.objects.filter(instrument=aapl, date=date(2023, 1, 3)).delete()
    assert _series(aapl) == _rows(aapl) == [
        ("2022-12-30", 80_000_000), ("2024-03-01", 99_999_999), ("2024-03-02", 100_500_000),
        ("2024-03-04", 101_250_000), ("2025-06-02", 150_000_000)]
    assert _series(msft) == [("2024-03-01", 300_000_000)]  # the other instrument untouched


@pytest.mark.django_db(transaction=True)
def test_the_last_close_before_the_start_is_carried_in_whatever_its_year():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2019, 5, 2): "50", date(2019, 5, 3): "51", date(2024, 1, 5): "60",
                         date(2024, 2, 1): "61"})
    assert _series(aapl, start=date(2024, 1, 10)) == [("2024-01-05", 60_000_000), ("2024-02-01", 61_000_000)]
    assert _series(aapl, start=date(2023, 1, 1)) == [("2019-05-03", 51_000_000), ("2024-01-05", 60_000_000),
                                                     ("2024-02-01", 61_000_000)]
    assert _series(aapl, start=date(2025, 1, 1)) == [("2024-02-01", 61_000_000)]


@pytest.mark.django_db(transaction=True)
def test_an_instrument_deleted_takes_its_series_with_it():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 1, 2): "100", date(2025, 1, 2): "110"})
    aapl.delete()
    assert not PriceSeries.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_instrument_at_once_both_land_in_the_series():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 1, 2): "100"})
    errors = transactions_at_once(lambda: closes_upsert(aapl, {date(2023, 6, 1): "90", date(2023, 6, 2): "91"}),
                                  lambda: closes_upsert(aapl, {date(2024, 1, 3): "101"}))
    assert errors == []
    assert _series(aapl) == _rows(aapl) == [("2023-06-01", 90_000_000), ("2023-06-02", 91_000_000),
                                            ("2024-01-02", 100_000_000), ("2024-01-03", 101_000_000)]
    assert np.all(np.diff(price_series_load(instrument_ids=[aapl.pk], start=date(2000, 1, 1))[1]).astype(int) > 0)


@pytest.mark.django_db(transaction=True)
def test_a_year_of_every_day_stays_in_the_row_not_in_toast():
    # 366 closes (a market open every day, a leap year) are 4.4 kB of days and millionths: kept in the
    # table's own page (migration prices/0007), where a chart reads them without a TOAST look-up each.
    btc = InstrumentFactory(symbol="BTC-USD")
    days = np.datetime64("2024-01-01") + np.arange(366)
    closes_upsert(btc, {day.item(): f"{40000 + n}.123456" for n, day in enumerate(days)})
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = %s",
                       [PriceSeries._meta.db_table])
        toast = cursor.fetchone()[0]
        cursor.execute(f"SELECT count(*) FROM {toast}")
        chunks = cursor.fetchone()[0]
        cursor.execute(f"SELECT length(days), length(micros) FROM {PriceSeries._meta.db_table} "
                       "WHERE instrument_id = %s", [btc.pk])
        sizes = cursor.fetchall()
    assert sizes == [(366 * 4, 366 * 8)]
    assert chunks == 0
    assert _series(btc)[-1] == ("2024-12-31", 40365_123456)
