"""Market-aware quote TTLs and staleness, with the clock frozen around opens, closes and holidays.

NYSE in late November 2026: Wed 25th a full day (14:30-21:00 UTC), Thu 26th Thanksgiving (closed),
Fri 27th an early close (14:30-18:00 UTC), Mon 30th a full day.
"""

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

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


def test_a_worker_loads_the_calendars_only_when_it_asks_one():
    """exchange-calendars and pandas (~50 MB, more with a calendar built) stay out of a process that never
    asks a calendar, such as a chart worker: every app and task module imported, then a chart generation's
    own modules."""
    root = Path(__file__).resolve().parents[2]
    script = ("import sys, django; django.setup()\n"
              "from celery_app import app; app.loader.import_default_modules()\n"
              "import charts.tasks, charts.compute, charts.performance, prices.tasks, portfolio.tasks\n"
              "print(sorted(m for m in ('pandas', 'exchange_calendars') if m in sys.modules))\n"
              "from prices.market_calendar import market_is_open\n"
              "from datetime import datetime, UTC\n"
              "market_is_open(mic='XNYS', now=datetime(2026, 11, 25, 15, tzinfo=UTC))\n"
              "print(sorted(m for m in ('pandas', 'exchange_calendars') if m in sys.modules))\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    result = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "['exchange_calendars', 'pandas']"]
