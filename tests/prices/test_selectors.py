"""The instruments read by fixed SQL (the valuation's hot read) are the ORM's, field for field of those a
valuation reads (InstrumentRow), and the latest closes read with them are prices_latest_get's."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prices.models import Instrument, PriceHistory
from prices.selectors import InstrumentRow, instruments_by_id_get, instruments_with_latest_get, prices_latest_get
from tests.factories import PriceFactory

pytestmark = pytest.mark.django_db


def field_values(instrument: Instrument | InstrumentRow) -> dict:
    # A field whose value the ORM converts after reading (from_db_value: JSON, custom types) would differ here.
    return {name: getattr(instrument, name) for name in InstrumentRow._fields}


def test_instruments_by_fixed_sql_are_the_orms_with_their_latest_closes():
    owner = get_user_model().objects.create(username="owner")
    shared = Instrument.objects.create(symbol="AAA", name="A", currency="USD", exchange_mic="XNYS")
    mine = Instrument.objects.create(symbol="AAA", name="Mine", currency="EUR", owner=owner, provider="manual")
    cash = Instrument.objects.create(symbol="CASH USD", currency="USD", asset_class="cash", provider="manual")
    Instrument.objects.create(symbol="CASH USD", currency="USD", owner=owner, provider="manual")  # not shared
    unpriced = Instrument.objects.create(symbol="ZZZ", currency="USD")
    for day, close in ((date(2024, 1, 2), "10.5"), (date(2024, 1, 3), "11.25"), (date(2024, 1, 1), "9")):
        PriceHistory.objects.create(instrument=shared, date=day, close=Decimal(close), source="yahoo")
    PriceHistory.objects.create(instrument=mine, date=date(2024, 1, 3), close=Decimal("7"), source="manual")
    ids = [shared.pk, mine.pk, unpriced.pk]

    by_id = instruments_by_id_get(ids=ids, shared_symbols=["CASH USD"])
    instruments, latest = instruments_with_latest_get(ids=ids, shared_symbols=["CASH USD"])

    expected = {i.pk: field_values(i) for i in Instrument.objects.filter(pk__in=[*ids, cash.pk])}
    assert {pk: field_values(i) for pk, i in by_id.items()} == expected
    assert all(type(i) is InstrumentRow for i in [*by_id.values(), *instruments.values()])
    assert list(by_id) == [shared.pk, mine.pk, cash.pk, unpriced.pk] == list(instruments)  # symbol, then id order
    assert {pk: field_values(i) for pk, i in instruments.items()} == expected
    assert latest == prices_latest_get(instrument_ids=expected)
    assert (latest[shared.pk].close, latest[shared.pk].previous_close) == (Decimal("11.25"), Decimal("10.5"))
    assert (latest[mine.pk].close, latest[mine.pk].previous_close) == (Decimal("7"), None)
    assert unpriced.pk not in latest and cash.pk not in latest
    assert instruments_with_latest_get(ids=[], shared_symbols=[]) == ({}, {})
    assert list(instruments_by_id_get(ids=[], shared_symbols=["CASH USD"])) == [cash.pk]  # an empty array of ids


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the ids are sent so on Postgres")
def test_the_latest_closes_alone_or_with_their_instruments_send_the_ids_as_the_same_array_text():
    # given ids psycopg would type by their size in a list (int2, int4, int8: under server-side binding, a
    # statement for each), one of them held
    aaa = Instrument.objects.create(symbol="AAA", currency="USD")
    PriceFactory(instrument=aaa, date=date(2024, 1, 2), close=Decimal("12.5"))
    ids = [aaa.pk, 40_000, 3_000_000_000]

    with CaptureQueriesContext(connection) as queries:
        alone = prices_latest_get(instrument_ids=ids)
        _, joined = instruments_with_latest_get(ids=ids)

    # then both send one text, which Postgres casts, whatever the ids' sizes; and read the same closes
    sent = f"ANY('{{{aaa.pk},40000,3000000000}}'::bigint[])"
    assert [sent in query["sql"] for query in queries.captured_queries] == [True, True]
    assert alone == joined == {aaa.pk: (Decimal("12.5"), date(2024, 1, 2), None, None)}
