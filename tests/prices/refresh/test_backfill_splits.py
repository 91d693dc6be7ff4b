"""History backfills store what each day actually traded at, across splits (loopback Yahoo)."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from prices.models import PriceHistory
from prices.providers.gateway import PriceService
from prices.providers.yahoo import YahooProvider
from prices.refresh.backfill import history_backfill
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory
from tests.stubs.market import MarketStub, stub_price

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 7, 1, 22, 0, tzinfo=UTC)  # after the close of Wed 1 July
SPLIT = date(2026, 6, 10)  # 2-for-1: the 10th is the first post-split session


@pytest.fixture
def market(settings) -> Iterator[MarketStub]:
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
    stub = MarketStub()
    stub.today = NOW.date()
    stub.splits["AAPL"] = [(SPLIT, 2, 1)]
    with stub.running():
        yield stub


def service_for(market: MarketStub) -> PriceService:
    provider = YahooProvider(base_url=market.url, timeout=2, clock=lambda: NOW)
    return PriceService(providers=lambda name: provider)


def test_a_history_across_a_split_is_stored_unadjusted(market):
    # Given a holding of AAPL since 1 June, and Yahoo charting it split-adjusted for the 2:1 of 10 June
    aapl = InstrumentFactory(symbol="AAPL", provider="yahoo")
    TransactionFactory(instrument=aapl, date=date(2026, 6, 1))
    adjusted = Decimal(stub_price("AAPL"))

    # When its history is backfilled
    written = history_backfill(instrument=aapl, since=date(2026, 6, 1), service=service_for(market), now=NOW)

    # Then every stored close is the day's actual price: before the split twice the adjusted one
    rows = list(PriceHistory.objects.filter(instrument=aapl).order_by("date"))
    assert written == len(rows) > 20
    assert rows[0].date == date(2026, 6, 1) and rows[-1].date == date(2026, 7, 1)
    for row in rows:
        assert row.adjusted_close == adjusted
        assert row.close == (2 * adjusted if row.date < SPLIT else adjusted), row.date
    by_date = {row.date: row.close for row in rows}
    assert by_date[date(2026, 6, 9)] == 2 * by_date[SPLIT]
    assert market.chart_requests == ["AAPL"]


def test_a_hole_filled_after_the_split_matches_the_closes_stored_before_it(market):
    # Given actual closes stored day by day up to 5 June (as the intraday refresh stores them),
    # and a hole from 8 June on
    aapl = InstrumentFactory(symbol="AAPL", provider="yahoo")
    TransactionFactory(instrument=aapl, date=date(2026, 6, 1))
    actual_before = 2 * Decimal(stub_price("AAPL"))
    for day in (1, 2, 3, 4, 5):
        PriceFactory(instrument=aapl, date=date(2026, 6, day), close=actual_before, source="yahoo")

    # When the hole is backfilled after the split
    history_backfill(instrument=aapl, since=date(2026, 6, 1), service=service_for(market), now=NOW)

    # Then the series is one model: no step down at the hole's edge, the halving only at the split
    closes = dict(PriceHistory.objects.filter(instrument=aapl).values_list("date", "close"))
    assert closes[date(2026, 6, 5)] == closes[date(2026, 6, 8)] == closes[date(2026, 6, 9)] == actual_before
    assert closes[SPLIT] == actual_before / 2
