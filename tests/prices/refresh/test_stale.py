"""Stale prices: flagged on reads, refreshed once in the background however many readers see them."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django_redis import get_redis_connection

from portfolio.selectors import portfolio_valuation_get
from prices.refresh.stale import stale_refresh_request
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def queued_tasks() -> list[bytes]:
    return get_redis_connection("default").lrange("prices", 0, -1)


def test_valuation_flags_stale_prices_with_their_date(portfolio):
    fresh, old = InstrumentFactory(symbol="SPY"), InstrumentFactory(symbol="QQQ")
    coin = InstrumentFactory(symbol="BTC", exchange_mic="", asset_class="crypto")
    for instrument in (fresh, old, coin):
        TransactionFactory(portfolio=portfolio, instrument=instrument)
    PriceFactory(instrument=fresh, date=date(2026, 11, 27), close=Decimal("600"))
    PriceFactory(instrument=old, date=date(2026, 11, 25), close=Decimal("500"))
    PriceFactory(instrument=coin, date=date(2026, 11, 28), close=Decimal("90000"))
    valuation = portfolio_valuation_get(portfolio=portfolio, now=datetime(2026, 11, 30, 10, tzinfo=UTC))
    flags = {h.instrument.symbol: (h.stale, h.price_as_of) for h in valuation.holdings}
    assert flags == {"SPY": (False, date(2026, 11, 27)), "QQQ": (True, date(2026, 11, 25)),
                     "BTC": (True, date(2026, 11, 28))}
    assert [h.instrument.symbol for h in valuation.stale_holdings] == ["BTC", "QQQ"]
    assert valuation.prices_as_of == date(2026, 11, 28)


def test_a_thousand_readers_queue_one_refresh():
    a, b = InstrumentFactory(symbol="A"), InstrumentFactory(symbol="B")
    claimed = [stale_refresh_request(instrument_ids=[a.pk, b.pk]) for _ in range(1000)]
    assert claimed[0] == sorted([a.pk, b.pk])
    assert all(c == [] for c in claimed[1:])
    assert len(queued_tasks()) == 1
    # a newly stale instrument gets its own refresh; the claimed ones are not queued again
    c = InstrumentFactory(symbol="C")
    assert stale_refresh_request(instrument_ids=[a.pk, c.pk]) == [c.pk]
    assert len(queued_tasks()) == 2
