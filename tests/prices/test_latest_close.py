"""The latest closes (prices.LatestClose) stay each instrument's two newest price rows, whoever writes them."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import connection, transaction

from prices.models import LatestClose, PriceHistory
from prices.selectors import LatestPrice, prices_latest_get
from tests.concurrency import transactions_at_once
from tests.factories import InstrumentFactory, PriceFactory, closes_upsert

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the latest closes are kept on Postgres")


def _latest(instrument) -> tuple | None:
    row = LatestClose.objects.filter(instrument=instrument).values_list("date", "close", "previous_close").first()
    return None if row is None else (row[0].isoformat(), str(row[1]), None if row[2] is None else str(row[2]))


def _from_rows(instrument) -> tuple | None:
    """What the price rows themselves say: the newest close and the one before it."""
    rows = list(PriceHistory.objects.filter(instrument=instrument).order_by("-date").values_list("date", "close")[:2])
    if not rows:
        return None
    return rows[0][0].isoformat(), str(rows[0][1]), str(rows[1][1]) if len(rows) > 1 else None


@pytest.mark.django_db(transaction=True)
def test_a_new_day_becomes_the_latest_close_in_the_upserts_transaction():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 12, 30): "100.5"})
    assert _latest(aapl) == ("2024-12-30", "100.500000", None)  # one close: no previous one yet
    with transaction.atomic():
        closes_upsert(aapl, {date(2024, 12, 31): "101", date(2025, 1, 2): "102.123456"})
        # Seen inside the writing transaction already ...
        assert _latest(aapl) == ("2025-01-02", "102.123456", "101.000000")
    # ... and after it.
    assert prices_latest_get(instrument_ids=[aapl.pk]) == {
        aapl.pk: LatestPrice(close=D("102.123456"), date=date(2025, 1, 2), previous_close=D("101"),
                              previous_date=date(2024, 12, 31))}


@pytest.mark.django_db(transaction=True)
def test_a_write_rolled_back_leaves_the_latest_close_as_it_was():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 1, 2): "100"})
    with pytest.raises(RuntimeError), transaction.atomic():
        closes_upsert(aapl, {date(2024, 1, 3): "101"})
        raise RuntimeError
    assert _latest(aapl) == ("2024-01-02", "100.000000", None)


@pytest.mark.django_db(transaction=True)
def test_backfills_corrections_days_filled_in_and_deletions_keep_the_two_newest_closes():
    aapl = InstrumentFactory(symbol="AAPL")
    msft = InstrumentFactory(symbol="MSFT")
    closes_upsert(aapl, {date(2024, 3, 1): "100", date(2024, 3, 5): "101"})
    closes_upsert(msft, {date(2024, 3, 1): "300"})

    # A backfill of earlier days changes nothing ...
    closes_upsert(aapl, {date(2023, 1, 3): "80", date(2023, 1, 4): "81"})
    assert _latest(aapl) == ("2024-03-05", "101.000000", "100.000000")
    # ... a day filled in between the two newest is the new previous close ...
    PriceFactory(instrument=aapl, date=date(2024, 3, 4), close=D("100.75"))
    assert _latest(aapl) == ("2024-03-05", "101.000000", "100.750000")
    # ... a provider corrects the newest close, a staff member the previous one by hand (no service on the way).
    closes_upsert(aapl, {date(2024, 3, 5): "101.25"})
    PriceHistory.objects.filter(instrument=aapl, date=date(2024, 3, 4)).update(close=D("99.999999"))
    assert _latest(aapl) == ("2024-03-05", "101.250000", "99.999999")
    # The newest row deleted: the two before it.
    PriceHistory.objects.filter(instrument=aapl, date=date(2024, 3, 5)).delete()
    assert _latest(aapl) == _from_rows(aapl) == ("2024-03-04", "99.999999", "100.000000")
    assert _latest(msft) == ("2024-03-01", "300.000000", None)  # the other instrument untouched
    # Every row deleted: no latest close at all.
    PriceHistory.objects.filter(instrument=aapl).delete()
    assert _latest(aapl) is None
    assert prices_latest_get(instrument_ids=[aapl.pk, msft.pk]) == {
        msft.pk: LatestPrice(close=D("300"), date=date(2024, 3, 1), previous_close=None, previous_date=None)}


@pytest.mark.django_db(transaction=True)
def test_rows_copied_in_and_an_instrument_deleted():
    aapl = InstrumentFactory(symbol="AAPL")
    columns = "instrument_id, date, close, source, last_updated"
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {PriceHistory._meta.db_table} ({columns}) FROM STDIN") as copy:
        for day, close in ((date(2024, 5, 2), "10.5"), (date(2024, 5, 6), "11"), (date(2024, 5, 3), "10.75")):
            copy.write_row((aapl.pk, day, close, "yahoo", "2024-05-06T20:00:00Z"))
    assert _latest(aapl) == ("2024-05-06", "11.000000", "10.750000")
    aapl.delete()
    assert not LatestClose.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_one_instrument_at_once_leave_the_newest_two_closes():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 1, 2): "100"})

    def insert(day: date, close: str) -> None:
        # A plain insert, not prices_upsert (which takes the locks itself before writing): only the trigger's
        # own locks order the two writers.
        PriceHistory.objects.create(instrument=aapl, date=day, close=D(close), source="yahoo")

    # Each writer alone would leave its own newest day; together, the rows of both count.
    errors = transactions_at_once(lambda: insert(date(2024, 1, 4), "104"), lambda: insert(date(2024, 1, 3), "103"))
    assert errors == []
    assert _latest(aapl) == _from_rows(aapl) == ("2024-01-04", "104.000000", "103.000000")


def _row_version(instrument) -> str:
    """The mirror row's xmin: the transaction that last wrote it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM prices_latestclose WHERE instrument_id = %s", [instrument.pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_refresh_resending_the_closes_it_has_leaves_the_row_unwritten():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 3, 1): "100", date(2024, 3, 4): "101"})
    written = _row_version(aapl)
    closes_upsert(aapl, {date(2024, 3, 4): "101"})  # the same close again (ON CONFLICT DO UPDATE fires)
    assert _row_version(aapl) == written
    closes_upsert(aapl, {date(2024, 3, 4): "101.5"})  # a correction is written
    assert _row_version(aapl) != written
    assert _latest(aapl) == ("2024-03-04", "101.500000", "100.000000")


@pytest.mark.django_db(transaction=True)
def test_a_truncated_price_history_leaves_no_latest_close():
    aapl = InstrumentFactory(symbol="AAPL")
    closes_upsert(aapl, {date(2024, 3, 1): "100"})
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE prices_pricehistory")
    assert _latest(aapl) is None
    closes_upsert(aapl, {date(2024, 3, 5): "102"})
    assert _latest(aapl) == ("2024-03-05", "102.000000", None)
