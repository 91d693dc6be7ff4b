"""MarketStub's charts with splits: adjusted like Yahoo's, events in Yahoo's wire format."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import requests

from prices.providers.yahoo import YahooProvider
from tests.stubs.market import MarketStub, bar_stamp, stub_price

TODAY = date(2026, 7, 1)
SPLIT = date(2026, 6, 10)  # 2-for-1: the 10th is the first post-split session


@pytest.fixture
def market() -> Iterator[MarketStub]:
    stub = MarketStub()
    stub.today = TODAY
    stub.splits["AAPL"] = [(SPLIT, 2, 1)]
    with stub.running():
        yield stub


def chart(market: MarketStub, symbol: str, first: date, last: date, events: str | None = "div,splits") -> dict:
    params = {"period1": bar_stamp(first) - 3600, "period2": bar_stamp(last) + 3600, "interval": "1d"}
    if events is not None:
        params["events"] = events
    reply = requests.get(f"{market.url}/v8/finance/chart/{symbol}", params=params, timeout=5)
    assert reply.status_code == 200
    return reply.json()["chart"]["result"][0]


def test_closes_are_adjusted_for_the_split_and_the_event_is_listed_in_yahoos_format(market):
    price = float(stub_price("AAPL"))

    result = chart(market, "AAPL", date(2026, 6, 8), date(2026, 6, 11))

    assert result["timestamp"] == [bar_stamp(date(2026, 6, d)) for d in (8, 9, 10, 11)]
    # every close in post-split terms, the actual pre-split closes being twice as high
    assert result["indicators"]["quote"][0]["close"] == [price] * 4
    assert result["indicators"]["adjclose"][0]["adjclose"] == [price] * 4
    stamp = bar_stamp(SPLIT)
    assert result["events"] == {
        "splits": {str(stamp): {"date": stamp, "numerator": 2, "denominator": 1, "splitRatio": "2:1"}}
    }
    assert market.close_on("AAPL", date(2026, 6, 9)) == 2 * Decimal(stub_price("AAPL"))
    assert market.close_on("AAPL", SPLIT) == Decimal(stub_price("AAPL"))


def test_a_window_ending_before_the_split_is_still_adjusted_but_lists_no_event(market):
    # Like Yahoo: the adjustment is as of today; the events only those inside the window
    result = chart(market, "AAPL", date(2026, 6, 1), date(2026, 6, 5))
    assert result["indicators"]["quote"][0]["close"] == [float(stub_price("AAPL"))] * 5
    assert "events" not in result


def test_events_are_listed_only_when_asked(market):
    result = chart(market, "AAPL", date(2026, 6, 8), date(2026, 6, 11), events=None)
    assert "events" not in result


def test_a_reverse_split_and_a_split_not_yet_happened(market):
    # Given a 1:10 reverse split in June and a 3:1 split dated after the stub's today
    market.splits["MSFT"] = [(date(2026, 6, 3), 1, 10), (date(2026, 7, 6), 3, 1)]
    price = Decimal(stub_price("MSFT"))

    result = chart(market, "MSFT", date(2026, 6, 1), TODAY)

    # Then only the reverse split is reported, and closes before it were a tenth as high
    assert [event["splitRatio"] for event in result["events"]["splits"].values()] == ["1:10"]
    assert market.close_on("MSFT", date(2026, 6, 2)) == price / 10
    assert market.close_on("MSFT", date(2026, 6, 3)) == price


def test_a_symbol_without_splits_is_charted_as_before(market):
    result = chart(market, "SPY", date(2026, 6, 8), date(2026, 6, 9))
    assert result["indicators"]["quote"][0]["close"] == [float(stub_price("SPY"))] * 2
    assert "events" not in result


def test_the_yahoo_client_gets_the_actual_closes_back(market):
    provider = YahooProvider(base_url=market.url, timeout=2, clock=lambda: datetime(2026, 7, 1, 20, tzinfo=UTC))

    bars = provider.daily_history("AAPL", date(2026, 6, 8), date(2026, 6, 11))

    assert [(bar.date, bar.close) for bar in bars] == [
        (date(2026, 6, d), market.close_on("AAPL", date(2026, 6, d))) for d in (8, 9, 10, 11)
    ]
    assert bars[0].close == 2 * bars[0].adjusted_close
