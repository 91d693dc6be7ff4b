"""Stooq (CSV): batch quotes from `/q/l/`, daily history from `/q/d/l/`. Symbols are Stooq's own
(`aapl.us`, `^spx`). Errors come as HTTP 200 with a plain-text body, and a blocked client gets an
HTML page instead of CSV.

Stooq's daily history is adjusted (for splits, and on some markets dividends) as of the day it is
fetched, and Stooq offers neither unadjusted history nor split events to undo that: its closes are
returned as sent, and docs/providers.md says what that means for stored history."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from prices.providers.base import (
    Bar,
    QuotaExhaustedError,
    Quote,
    QuoteBatch,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.http import HttpProvider, Reply, check_batch_size, price_parse, unique

# Stooq stamps quotes in Warsaw time (a US close at 16:00 New York shows as 22:00).
STOOQ_ZONE = ZoneInfo("Europe/Warsaw")
QUOTE_FIELDS = "sd2t2ohlcv"  # symbol, date, time, open, high, low, close, volume
QUOTE_HEADER = ["symbol", "date", "time", "open", "high", "low", "close", "volume"]
NO_DATA = "N/D"
# Stooq is a website that also serves CSV, and blocks clients that look like scripts.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


class StooqProvider(HttpProvider):
    user_agent = BROWSER_USER_AGENT
    name = "stooq"
    # Symbols travel in the URL joined by "+"; 20 keeps it short (a batch is one daily hit).
    max_symbols_per_request = 20
    requests_per_second = 0.5  # undocumented limits: stay gentle
    daily_quota = None  # a daily hit limit exists but is unpublished: QuotaExhaustedError tells


    # --- latest quotes

    def latest_quotes(self, symbols: list[str]) -> QuoteBatch:
        symbols = unique(symbols)
        check_batch_size(symbols, self.batch_size_ceiling(), self.name)
        if not symbols:
            return QuoteBatch()
        # Built by hand: the `h` flag has no value, and symbols are joined by a literal "+".
        query = f"s={'+'.join(quote(s, safe='') for s in symbols)}&f={QUOTE_FIELDS}&h&e=csv"
        if self._http.api_key:
            query += f"&apikey={quote(self._http.api_key, safe='')}"
        rows = self._csv_rows(self._http.get("/q/l/", query=query))
        if [cell.strip().lower() for cell in rows[0]] != QUOTE_HEADER:
            raise TransientError(f"stooq: unexpected quote header {rows[0]!r}")
        wanted = {symbol.lower(): symbol for symbol in symbols}
        batch = QuoteBatch()
        for row in rows[1:]:
            if len(row) != len(QUOTE_HEADER):
                raise TransientError(f"stooq: malformed or truncated quote row {row!r}")
            symbol = wanted.get(row[0].strip().lower())
            if symbol is None:
                continue  # not something we asked for
            if row[1].strip() == NO_DATA:
                batch.unknown.add(symbol)
                continue
            price = price_parse(row[6])
            as_of = _warsaw_to_utc(row[1], row[2])
            if price is None or as_of is None:
                continue  # a known symbol without a usable price: missing this time
            batch.quotes[symbol] = Quote(symbol=symbol, price=price, as_of=as_of)
        return batch

    # --- daily history

    def daily_history(self, symbol: str, start: date, end: date) -> list[Bar]:
        if start > end:
            return []
        params = {
            "s": symbol,
            "i": "d",
            "d1": start.strftime("%Y%m%d"),
            "d2": end.strftime("%Y%m%d"),
        }
        if self._http.api_key:
            params["apikey"] = self._http.api_key
        reply = self._http.get("/q/d/l/", params=params)
        if reply.status == 200 and reply.text.strip().lower().startswith("no data"):
            raise UnknownSymbolError(symbol, f"stooq: no data for {symbol}")
        rows = self._csv_rows(reply)
        header = [cell.strip().lower() for cell in rows[0]]
        if "date" not in header or "close" not in header:
            raise TransientError(f"stooq: unexpected history header {rows[0]!r}")
        date_at, close_at = header.index("date"), header.index("close")
        bars: dict[date, Bar] = {}
        for row in rows[1:]:
            if len(row) != len(header):
                raise TransientError(f"stooq: malformed or truncated history row {row!r}")
            try:
                day = date.fromisoformat(row[date_at].strip())
            except ValueError:
                raise TransientError(f"stooq: bad date in history row {row!r}") from None
            close = price_parse(row[close_at])
            if close is not None and start <= day <= end:
                bars[day] = Bar(date=day, close=close)
        return [bars[day] for day in sorted(bars)]

    # --- shared

    def _csv_rows(self, reply: Reply) -> list[list[str]]:
        """The non-empty CSV rows of a reply, after the checks common to both endpoints."""
        if "exceeded the daily hits limit" in reply.text.lower():
            raise QuotaExhaustedError(f"stooq: {self._http.snippet(reply)}")
        self._http.raise_for_status(reply)
        text = self._http.text(reply)  # HTML (bot wall, error page) raises here
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
        if not rows:
            raise TransientError("stooq: empty body")
        return rows


def _warsaw_to_utc(day: str, time_of_day: str) -> datetime | None:
    try:
        local = datetime.fromisoformat(f"{day.strip()}T{time_of_day.strip()}")
    except ValueError:
        return None
    return local.replace(tzinfo=STOOQ_ZONE).astimezone(UTC)
