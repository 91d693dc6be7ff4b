"""Stale prices: flagged on reads, refreshed once in the background however many readers see them."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_redis import get_redis_connection

from portfolio.selectors import portfolio_valuation_get
from prices.history import history_backfill_request
from prices.market_calendar import last_expected_close_date, sessions_between
from prices.refresh.stale import stale_refresh_request
from prices.services import PricePoint, price_rows_upsert
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


def test_an_instrument_whose_history_is_being_backfilled_gets_no_quote_refresh():
    # given a new instrument with no close yet, its history backfill queued (its claim held)
    new, other = InstrumentFactory(symbol="NEW"), InstrumentFactory(symbol="OLD")
    assert history_backfill_request(needs={new.pk: timezone.localdate() - timedelta(days=30)})

    # when a reader finds both stale, only the one nobody is fetching gets a refresh
    assert stale_refresh_request(instrument_ids=[new.pk, other.pk]) == [other.pk]
    assert len(queued_tasks()) == 1


def test_a_backfill_landing_between_the_read_and_the_request_leaves_nothing_to_refresh(portfolio):
    # given a reader that found a new holding without any close (stale)
    instrument = InstrumentFactory(symbol="NEW")
    TransactionFactory(portfolio=portfolio, instrument=instrument)
    assert [h.instrument.symbol for h in portfolio_valuation_get(portfolio=portfolio).stale_holdings] == ["NEW"]

    # when its backfill stores the closes up to the last that should exist (claim released) before
    # the reader asks for a refresh
    last = last_expected_close_date(mic=instrument.exchange_mic, now=timezone.now())
    price_rows_upsert(rows=[(instrument.pk, PricePoint(date=day, close=Decimal("10")), "simulated")
                            for day in sessions_between(mic=instrument.exchange_mic, start=last - timedelta(days=10),
                                                        end=last)])

    # then no quote is asked for: one landing later would re-value what was just made from those closes
    assert stale_refresh_request(instrument_ids=[instrument.pk]) == []
    assert queued_tasks() == []
