"""Exchange calendars (exchange-calendars): which days an instrument trades on.

An instrument with no exchange (crypto) trades every day, around the clock.

exchange-calendars and pandas are loaded on the first call, not at import: they are ~50 MB of every
process that imports the apps, and the chart workers (whose peak memory is a target) never ask a calendar.
The first call in a process pays about 0.75 s once (the imports, then building the calendar): a web process
pays it as it starts (market_calendars_load, from config/process.py), not in the first valuation it makes.
"""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import exchange_calendars as xcals
    import pandas as pd


@cache
def _libraries() -> tuple[ModuleType, ModuleType]:
    """(exchange_calendars, pandas), imported once per process on first use."""
    return importlib.import_module("exchange_calendars"), importlib.import_module("pandas")

# The calendars are built from here on: older trades are valued on plain weekdays.
CALENDAR_START = "2000-01-03"
DEFAULT_MIC = "XNYS"


@cache
def calendar_get(mic: str) -> xcals.ExchangeCalendar | None:
    """The calendar of an exchange, or None for 24/7 instruments. Unknown MICs fall back to NYSE."""
    if not mic:
        return None
    xcals, _ = _libraries()
    name = mic if mic in xcals.get_calendar_names() else DEFAULT_MIC
    return xcals.get_calendar(name, start=CALENDAR_START)


def sessions_between(*, mic: str, start: date, end: date) -> list[date]:
    """Trading days from start to end inclusive."""
    if end < start:
        return []
    _, pd = _libraries()
    calendar = calendar_get(mic)
    if calendar is None:
        return [d.date() for d in pd.date_range(start, end, freq="D")]
    lo = max(pd.Timestamp(start), calendar.first_session)
    hi = min(pd.Timestamp(end), calendar.last_session)
    if lo > hi:
        return []
    return [d.date() for d in calendar.sessions_in_range(lo, hi)]


def _minute(now: datetime) -> pd.Timestamp:
    _, pd = _libraries()
    return pd.Timestamp(now).tz_convert("UTC").floor("min")


def market_is_open(*, mic: str, now: datetime) -> bool:
    calendar = calendar_get(mic)
    return True if calendar is None else bool(calendar.is_open_on_minute(_minute(now)))


def seconds_until_open(*, mic: str, now: datetime) -> float:
    """0 while open; else how long until the next session opens (holidays and weekends skipped)."""
    calendar = calendar_get(mic)
    if calendar is None or market_is_open(mic=mic, now=now):
        return 0.0
    _, pd = _libraries()
    return (calendar.next_open(_minute(now)) - pd.Timestamp(now).tz_convert("UTC")).total_seconds()


@lru_cache(maxsize=4096)
def _last_expected_close_date(mic: str, minute: datetime, grace_minutes: int) -> date:
    _, pd = _libraries()
    cutoff = pd.Timestamp(minute) - pd.Timedelta(minutes=grace_minutes)
    calendar = calendar_get(mic)
    if calendar is None:
        # A 24/7 market's daily close is midnight UTC: the last complete day is yesterday.
        return (cutoff - pd.Timedelta(days=1)).date()
    # The session date is the close's date on the exchange's own clock.
    # previous_close is strictly before its argument; a close exactly at the cut-off counts.
    return calendar.previous_close(cutoff + pd.Timedelta(minutes=1)).tz_convert(calendar.tz).date()


def market_calendars_load() -> None:
    """Load what the first valuation in a process would: the libraries, the default exchange's calendar and its
    first close lookup (pandas builds caches of its own on first use). For a process that values portfolios
    anyway (a web process, as it starts): otherwise its first cold dashboard read pays ~0.75 s for it, and every
    request waiting on that read (query_cache's single flight) with it."""
    last_expected_close_date(mic=DEFAULT_MIC, now=datetime.now(UTC))


def last_expected_close_date(*, mic: str, now: datetime, grace_minutes: int = 0) -> date:
    """The session date of the most recent close that should have a price by `now`
    (weekends, holidays and early closes respected)."""
    # The cache key is a plain datetime: building a pandas Timestamp per call would cost more than
    # the cached answer saves (a dashboard asks once per holding).
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return _last_expected_close_date(mic, minute, grace_minutes)


def price_is_stale(*, mic: str, price_date: date, now: datetime, grace_minutes: int = 0) -> bool:
    """Older than the last session close the calendar says should exist."""
    return price_date < last_expected_close_date(mic=mic, now=now, grace_minutes=grace_minutes)
