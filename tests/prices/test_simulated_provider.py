"""The offline provider: deterministic, calendar-aware, Decimal prices."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from prices.providers.base import UnknownSymbolError
from prices.providers.simulated import SimulatedProvider, simulated_close


def test_history_is_deterministic_and_independent_of_the_range():
    provider = SimulatedProvider(now=datetime(2026, 6, 1, 21, tzinfo=UTC))
    long = {b.date: b.close for b in provider.daily_history("AAPL", date(2024, 1, 1), date(2024, 12, 31))}
    short = {b.date: b.close for b in provider.daily_history("AAPL", date(2024, 7, 1), date(2024, 7, 31))}
    assert short == {d: c for d, c in long.items() if date(2024, 7, 1) <= d <= date(2024, 7, 31)}
    assert all(isinstance(c, Decimal) and c > 0 for c in long.values())
    assert simulated_close("AAPL", date(2026, 1, 2)) == Decimal("270.00")  # anchored level


def test_stock_history_follows_the_nyse_calendar():
    provider = SimulatedProvider(now=datetime(2026, 6, 1, 21, tzinfo=UTC))
    days = [b.date for b in provider.daily_history("SPY", date(2024, 12, 20), date(2025, 1, 3))]
    # weekends, Christmas and New Year's Day are absent
    assert days == [date(2024, 12, d) for d in (20, 23, 24, 26, 27, 30, 31)] + [date(2025, 1, 2), date(2025, 1, 3)]


def test_crypto_trades_every_day():
    provider = SimulatedProvider(now=datetime(2026, 6, 1, 21, tzinfo=UTC))
    days = [b.date for b in provider.daily_history("BTC", date(2024, 12, 24), date(2024, 12, 28))]
    assert days == [date(2024, 12, d) for d in range(24, 29)]


def test_todays_close_is_absent_until_the_session_closes():
    # 2026-06-01 is a Monday; NYSE closes 20:00 UTC in summer.
    before_close = SimulatedProvider(now=datetime(2026, 6, 1, 15, tzinfo=UTC))
    after_close = SimulatedProvider(now=datetime(2026, 6, 1, 20, 30, tzinfo=UTC))
    assert before_close.daily_history("SPY", date(2026, 5, 28), date(2026, 6, 1))[-1].date == date(2026, 5, 29)
    assert after_close.daily_history("SPY", date(2026, 5, 28), date(2026, 6, 1))[-1].date == date(2026, 6, 1)


def test_quotes_after_the_close_are_the_close_and_unknown_symbols_are_flagged():
    provider = SimulatedProvider(now=datetime(2026, 6, 1, 22, tzinfo=UTC))
    batch = provider.latest_quotes(["AAPL", "ZZFAKE"])
    assert batch.unknown == {"ZZFAKE"}
    quote = batch.quotes["AAPL"]
    assert quote.price == simulated_close("AAPL", date(2026, 6, 1))
    assert quote.previous_close == simulated_close("AAPL", date(2026, 5, 29))
    assert quote.as_of == datetime(2026, 6, 1, 20, tzinfo=UTC)
    with pytest.raises(UnknownSymbolError):
        provider.daily_history("ZZFAKE", date(2024, 1, 1), date(2024, 2, 1))


def test_quotes_during_the_session_move_between_the_closes():
    provider = SimulatedProvider(now=datetime(2026, 6, 1, 16, 45, tzinfo=UTC))  # halfway 13:30-20:00
    quote = provider.latest_quotes(["AAPL"]).quotes["AAPL"]
    previous, close = simulated_close("AAPL", date(2026, 5, 29)), simulated_close("AAPL", date(2026, 6, 1))
    assert quote.previous_close == previous
    assert abs(quote.price - (previous + close) / 2) <= Decimal("0.01")
