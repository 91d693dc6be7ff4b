"""Exchange calendars (exchange-calendars): which days an instrument trades on.

An instrument with no exchange (crypto) trades every day, around the clock.
"""

from datetime import date
from functools import cache

import exchange_calendars as xcals
import pandas as pd

# The calendars are built from here on: older trades are valued on plain weekdays.
CALENDAR_START = "2000-01-03"
DEFAULT_MIC = "XNYS"


@cache
def calendar_get(mic: str) -> xcals.ExchangeCalendar | None:
    """The calendar of an exchange, or None for 24/7 instruments. Unknown MICs fall back to NYSE."""
    if not mic:
        return None
    name = mic if mic in xcals.get_calendar_names() else DEFAULT_MIC
    return xcals.get_calendar(name, start=CALENDAR_START)


def sessions_between(*, mic: str, start: date, end: date) -> list[date]:
    """Trading days from start to end inclusive."""
    if end < start:
        return []
    calendar = calendar_get(mic)
    if calendar is None:
        return [d.date() for d in pd.date_range(start, end, freq="D")]
    lo = max(pd.Timestamp(start), calendar.first_session)
    hi = min(pd.Timestamp(end), calendar.last_session)
    if lo > hi:
        return []
    return [d.date() for d in calendar.sessions_in_range(lo, hi)]
