"""Alpha Vantage: `GLOBAL_QUOTE` (one symbol per request) and `TIME_SERIES_DAILY`. Every answer is
HTTP 200; throttling, quota and bad requests are told by the body's keys and wording.

`TIME_SERIES_DAILY` is documented as the raw (as-traded) series: its closes are what Folio stores,
with nothing to un-adjust (split and dividend data come only with the premium
`TIME_SERIES_DAILY_ADJUSTED`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from prices.providers.base import (
    Bar,
    PermanentError,
    QuotaExhaustedError,
    Quote,
    QuoteBatch,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.http import HttpProvider, check_batch_size, price_parse, unique

# `outputsize=compact` returns the latest 100 trading days, which span at least 140 calendar days;
# within this many days of today compact suffices, and it is free where `full` may be premium.
COMPACT_SPAN_DAYS = 130
SERIES_KEY = "Time Series (Daily)"


class AlphaVantageProvider(HttpProvider):
    name = "alphavantage"
    max_symbols_per_request = 1  # GLOBAL_QUOTE takes one symbol
    requests_per_second = 5 / 60  # the free key is throttled in bursts as well as per day
    daily_quota = 25  # free key: 25 requests a day

    def _query(self, symbol: str, **params: str) -> dict[str, Any]:
        """One call to /query, with every error the body can carry raised."""
        params["symbol"] = symbol
        if self._http.api_key:
            params["apikey"] = self._http.api_key
        reply = self._http.get("/query", params=params)
        self._http.raise_for_status(reply)
        data = self._http.json(reply)
        if not isinstance(data, dict):
            raise TransientError(f"alphavantage: unexpected body {self._http.snippet(reply)!r}")
        for key in ("Note", "Information"):
            if key in data:
                self._raise_for_notice(self._http.redact(data[key]))
        if "Error Message" in data:
            message = self._http.redact(data["Error Message"])
            if "apikey" in message.lower().replace(" ", ""):
                raise PermanentError(f"alphavantage: {message}")
            # Our parameters are fixed and valid, so an "Invalid API call" is about the symbol.
            raise UnknownSymbolError(symbol, f"alphavantage: {message}")
        return data

    @staticmethod
    def _raise_for_notice(message: str) -> None:
        """A "Note" or "Information" body. Its wording tells a burst throttle (retry soon) from
        the spent daily quota and from a premium-only feature (never), and the throttle texts
        themselves advertise the premium plans, so the order of these checks matters."""
        lower = message.lower()
        if "per minute" in lower:
            # Asked again within the minute, it refuses again, and counts each refusal against the day's calls.
            raise RateLimitedError(f"alphavantage: {message}", retry_after=60.0)
        if "per second" in lower or "sparingly" in lower:
            raise RateLimitedError(f"alphavantage: {message}")
        if "per day" in lower or "daily rate limit" in lower or "daily limit" in lower:
            raise QuotaExhaustedError(f"alphavantage: {message}")
        if "premium" in lower or "api key" in lower:
            # Premium-only endpoint or parameter, or a demo / missing key.
            raise PermanentError(f"alphavantage: {message}")
        raise RateLimitedError(f"alphavantage: {message}")

    # --- latest quotes

    def latest_quotes(self, symbols: list[str]) -> QuoteBatch:
        symbols = unique(symbols)
        check_batch_size(symbols, self.batch_size_ceiling(), self.name)
        batch = QuoteBatch()
        if not symbols:
            return batch
        symbol = symbols[0]
        try:
            data = self._query(symbol, function="GLOBAL_QUOTE")
        except UnknownSymbolError:
            batch.unknown.add(symbol)
            return batch
        fields = data.get("Global Quote")
        if not isinstance(fields, dict):
            raise TransientError(f"alphavantage: no Global Quote in {str(data)[:200]!r}")
        if not fields:
            batch.unknown.add(symbol)  # `{"Global Quote": {}}` is Alpha Vantage's "no such symbol"
            return batch
        price = price_parse(fields.get("05. price"))
        day = _date(fields.get("07. latest trading day"))
        if price is None or day is None:
            return batch  # a known symbol without a usable price: missing this time
        batch.quotes[symbol] = Quote(
            symbol=symbol,
            price=price,
            as_of=self._as_of(day),
            previous_close=price_parse(fields.get("08. previous close")),
            session_date=day,
        )
        return batch

    def _as_of(self, day: date) -> datetime:
        """Alpha Vantage gives only the trading day: the price is no newer than the end of it,
        nor than now."""
        end_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        return min(self._clock(), end_of_day)

    # --- daily history

    def daily_history(self, symbol: str, start: date, end: date) -> list[Bar]:
        if start > end:
            return []
        recent = start >= self._clock().date() - timedelta(days=COMPACT_SPAN_DAYS)
        data = self._query(
            symbol, function="TIME_SERIES_DAILY", outputsize="compact" if recent else "full"
        )
        series = data.get(SERIES_KEY)
        if not isinstance(series, dict):
            raise TransientError(f"alphavantage: no {SERIES_KEY} in {str(data)[:200]!r}")
        bars: dict[date, Bar] = {}
        for day_text, fields in series.items():
            day = _date(day_text)
            close = price_parse(fields.get("4. close")) if isinstance(fields, dict) else None
            if day is not None and close is not None and start <= day <= end:
                bars[day] = Bar(date=day, close=close)
        return [bars[day] for day in sorted(bars)]


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None
