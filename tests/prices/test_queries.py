"""Hot price-history reads use the (instrument, date) index: EXPLAIN on the real Postgres."""

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from prices.models import Instrument, PriceHistory
from prices.selectors import price_history_get, prices_latest_get

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="EXPLAIN plans are Postgres's"),
]


@pytest.fixture
def history():
    instruments = Instrument.objects.bulk_create([Instrument(symbol=f"IDX{n}") for n in range(40)])
    start = date(2020, 1, 1)
    PriceHistory.objects.bulk_create([
        PriceHistory(instrument=instrument, date=start + timedelta(days=d), close=Decimal("100"), source="simulated")
        for instrument in instruments for d in range(500)
    ])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE prices_pricehistory")
    return instruments


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        return json.dumps(cursor.fetchone()[0])


def test_history_range_query_uses_the_instrument_date_index(history):
    queryset = PriceHistory.objects.filter(instrument=history[3], date__gte=date(2020, 6, 1),
                                           date__lte=date(2020, 9, 1)).order_by("date")
    plan = plan_of(queryset)
    assert "pricehistory_instrument_date_uniq" in plan
    assert '"Seq Scan"' not in plan
    assert len(price_history_get(instrument=history[3], start=date(2020, 6, 1), end=date(2020, 9, 1))) == 93


def test_latest_price_query_uses_the_index(history):
    newest = PriceHistory.objects.filter(instrument=history[5]).order_by("-date")[:1]
    plan = plan_of(newest)
    assert "pricehistory_instrument_date_uniq" in plan
    assert '"Seq Scan"' not in plan
    latest = prices_latest_get(instrument_ids=[i.pk for i in history])
    assert latest[history[5].pk].date == date(2020, 1, 1) + timedelta(days=499)
