"""Market-aware quote TTLs and staleness, with the clock frozen around opens, closes and holidays.

NYSE in late November 2026: Wed 25th a full day (14:30-21:00 UTC), Thu 26th Thanksgiving (closed),
Fri 27th an early close (14:30-18:00 UTC), Mon 30th a full day.
"""

from datetime import UTC, date, datetime

import pytest

from prices.market_calendar import last_expected_close_date, market_is_open, seconds_until_open
from prices.quote_cache import quote_ttl_seconds
from prices.refresh.stale import price_stale


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "ttl"),
    [
        (at(30, 14, 29), 60),  # a minute before the open: fresh until 14:30 -> at least the open TTL
        (at(30, 14, 20), 600),  # ten minutes before the open
        (at(30, 14, 30), 60),  # open: short TTL
        (at(30, 20, 59), 60),  # last minute of the session
        (at(30, 21, 0), 63000),  # after the close: until Tue 1 Dec 14:30
        (at(25, 21, 30), 147600),  # Wed evening: Thanksgiving skipped, until Fri 14:30
        (at(27, 17, 59), 60),  # early-close day, still open
        (at(27, 18, 0), 246600),  # early close at 18:00: until Mon 14:30
        (at(28, 12, 0), 181800),  # Saturday
    ],
)
def test_quote_ttl_follows_the_nyse_calendar(now, ttl, settings):
    settings.QUOTE_TTL_OPEN_SECONDS = 60
    assert quote_ttl_seconds(mic="XNYS", now=now) == ttl


def test_crypto_quotes_always_have_the_open_ttl(settings):
    settings.QUOTE_TTL_OPEN_SECONDS = 45
    assert quote_ttl_seconds(mic="", now=at(28, 3)) == 45
    assert market_is_open(mic="", now=at(26, 16)) is True
    assert seconds_until_open(mic="", now=at(26, 16)) == 0


def test_a_holiday_is_closed():
    assert market_is_open(mic="XNYS", now=at(26, 16)) is False
    assert market_is_open(mic="XNYS", now=at(25, 16)) is True


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(25, 20, 0), date(2026, 11, 24)),  # Wed during the session: Tuesday's close is the latest
        (at(25, 21, 30), date(2026, 11, 25)),  # Wed after the close + 30 min grace
        (at(25, 21, 10), date(2026, 11, 24)),  # within the grace period, Wednesday's close may be late
        (at(26, 16, 0), date(2026, 11, 25)),  # Thanksgiving: Wednesday's close is still the latest
        (at(27, 18, 10), date(2026, 11, 25)),  # early close at 18:00, within grace
        (at(27, 18, 31), date(2026, 11, 27)),  # early close respected
        (at(29, 12, 0), date(2026, 11, 27)),  # Sunday
    ],
)
def test_last_expected_close_respects_holidays_early_closes_and_grace(now, expected):
    assert last_expected_close_date(mic="XNYS", now=now, grace_minutes=30) == expected


def test_staleness_flags(settings):
    settings.STALE_GRACE_MINUTES = 30
    monday_morning = at(30, 10)
    assert price_stale(mic="XNYS", price_date=date(2026, 11, 27), now=monday_morning) is False
    assert price_stale(mic="XNYS", price_date=date(2026, 11, 25), now=monday_morning) is True
    assert price_stale(mic="XNYS", price_date=None, now=monday_morning) is True
    # crypto: yesterday's close is due shortly after midnight UTC
    assert price_stale(mic="", price_date=date(2026, 11, 29), now=monday_morning) is False
    assert price_stale(mic="", price_date=date(2026, 11, 28), now=monday_morning) is True
    # London: a close of Friday is current on Monday before the LSE opens
    assert price_stale(mic="XLON", price_date=date(2026, 11, 27), now=at(30, 7)) is False
