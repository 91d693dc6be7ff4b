"""Twelve Data: batched `/quote`, daily history from `/time_series`, search from `/symbol_search`,
profiles from `/profile` (higher plans; others get a 403 error body, a permanent failure). Errors often arrive with HTTP
200 as `{"code": …, "message": …, "status": "error"}`, at the top level or per symbol inside a
batch, and the body's shape depends on how many symbols were asked.

`/time_series` adjusts daily bars for splits unless asked not to (`adjust`: all, splits,
dividends, none; default splits): history is asked with `adjust=none`, the closes as traded."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prices.providers.base import (
    SEARCH_RESULTS,
    Bar,
    History,
    PermanentError,
    ProfileFacts,
    QuotaExhaustedError,
    Quote,
    QuoteBatch,
    RateLimitedError,
    SearchHit,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.http import (
    HttpProvider,
    Reply,
    check_batch_size,
    list_field,
    price_parse,
    retry_after_parse,
    text_field,
    unique,
    utc_from_unix,
)

# The most rows one /time_series answer carries (about 20 years of daily bars).
MAX_OUTPUT_SIZE = 5000
# Folio stores what each day traded at; the default ("splits") would rewrite every close before a
# split into post-split terms.
HISTORY_ADJUST = "none"
# Twelve Data's instrument types (`/time_series` meta `type`) as Folio's asset classes.
ASSET_CLASSES = {
    "Common Stock": "stock", "Preferred Stock": "stock", "Depositary Receipt": "stock", "ETF": "etf",
    "Mutual Fund": "fund", "Digital Currency": "crypto", "Index": "other", "Physical Currency": "other",
}


class TwelveDataProvider(HttpProvider):
    name = "twelvedata"
    # Every symbol of a batch costs one credit, and the free tier has 8 credits a minute.
    max_symbols_per_request = 8
    # Its documented batch maximum (comma-separated symbols on /quote, /time_series): for a paid plan.
    max_batch_size = 120
    # Free tier: 8 credits a minute and 800 a day, one credit per symbol of a batch.
    credits_per_symbol = True
    requests_per_second = 8 / 60
    daily_quota = 800

    def _params(self, **params: str) -> dict[str, str]:
        if self._http.api_key:
            params["apikey"] = self._http.api_key
        return params

    # --- latest quotes

    def latest_quotes(self, symbols: list[str]) -> QuoteBatch:
        symbols = unique(symbols)
        check_batch_size(symbols, self.batch_size_ceiling(), self.name)
        if not symbols:
            return QuoteBatch()
        reply = self._http.get("/quote", params=self._params(symbol=",".join(symbols)))
        data = self._json(reply)
        if not isinstance(data, dict):
            raise TransientError(f"twelvedata: unexpected body {self._http.snippet(reply)!r}")
        if len(symbols) == 1:
            entries = {symbols[0]: _unwrap_single(data, symbols[0])}
        elif _is_error(data):
            self._raise_for_error(data, reply, alone=True)
            raise PermanentError(f"twelvedata: request refused: {self._message(data)}")
        else:
            entries = _entries_by_symbol(data, symbols)
        if not _is_error(data):
            self._http.raise_for_status(reply)  # an error status whose body was no error object
        batch = QuoteBatch()
        for symbol, entry in entries.items():
            if not isinstance(entry, dict):
                continue  # absent from the answer: missing this time, not known to be unknown
            if _is_error(entry):
                # Raises for what concerns the whole request; else the symbol is not served.
                self._raise_for_error(entry, reply, alone=len(symbols) == 1)
                batch.unknown.add(symbol)
                continue
            quote = _quote(symbol, entry)
            if quote is not None:
                batch.quotes[symbol] = quote
        return batch

    # --- daily history

    def daily_history(self, symbol: str, start: date, end: date) -> list[Bar]:
        if start > end:
            return []
        params = self._params(
            symbol=symbol,
            interval="1day",
            start_date=start.isoformat(),
            # Ask a day past `end` so the answer holds `end` whether the API treats its end date
            # as inclusive or not; the filter below trims the extra day.
            end_date=(end + timedelta(days=1)).isoformat(),
            outputsize=str(MAX_OUTPUT_SIZE),
            adjust=HISTORY_ADJUST,
        )
        reply = self._http.get("/time_series", params=params)
        data = self._json(reply)
        if _is_error(data):
            if "no data is available" in self._message(data).lower():
                return []  # a known symbol without bars in the range
            self._raise_for_error(data, reply, alone=True)
            raise UnknownSymbolError(symbol, f"twelvedata: {self._message(data)}")
        self._http.raise_for_status(reply)
        values = data.get("values") if isinstance(data, dict) else None
        if not isinstance(values, list):
            raise TransientError(f"twelvedata: no values in {self._http.snippet(reply)!r}")
        bars: dict[date, Bar] = {}
        for row in values:
            if not isinstance(row, dict):
                continue
            day = _date(row.get("datetime"))
            close = price_parse(row.get("close"))
            if day is None or close is None or not start <= day <= end:
                continue
            bars[day] = Bar(date=day, close=close)
        meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
        currency, kind = meta.get("currency"), meta.get("type")
        # Twelve Data sends newest first; the interface wants oldest first.
        return History((bars[day] for day in sorted(bars)),
                       currency=currency if isinstance(currency, str) and currency else None,
                       asset_class=ASSET_CLASSES.get(kind) if isinstance(kind, str) else None)

    # --- search

    def search(self, query: str) -> list[SearchHit]:
        reply = self._http.get("/symbol_search", params=self._params(symbol=query, outputsize=str(SEARCH_RESULTS)))
        data = self._json(reply)
        if _is_error(data):
            self._raise_for_error(data, reply, alone=True)
            raise PermanentError(f"twelvedata: search refused: {self._message(data)}")
        self._http.raise_for_status(reply)
        hits = []
        for row in list_field(data, "data", http=self._http, reply=reply, what="search"):
            symbol = text_field(row.get("symbol")) if isinstance(row, dict) else ""
            if not symbol:
                continue
            hits.append(SearchHit(
                symbol=symbol.upper(), name=text_field(row.get("instrument_name")),
                exchange=text_field(row.get("exchange")), currency=text_field(row.get("currency")).upper() or "USD",
                asset_class=ASSET_CLASSES.get(text_field(row.get("instrument_type")), "other"), provider=self.name))
        return hits

    # --- profile

    def profile(self, symbol: str) -> ProfileFacts:
        reply = self._http.get("/profile", params=self._params(symbol=symbol))
        data = self._json(reply)
        if _is_error(data):
            self._raise_for_error(data, reply, alone=True)
            if _code(data) == 404 or "not found" in self._message(data).lower():
                raise UnknownSymbolError(symbol, f"twelvedata: {self._message(data)}")
            raise PermanentError(f"twelvedata: profile refused: {self._message(data)}")
        self._http.raise_for_status(reply)
        if not isinstance(data, dict) or "symbol" not in data:
            raise TransientError(f"twelvedata: unexpected profile body {self._http.snippet(reply)!r}")
        return ProfileFacts(sector=text_field(data.get("sector")), industry=text_field(data.get("industry")),
                            country=text_field(data.get("country")))

    # --- errors

    def _json(self, reply: Reply) -> Any:
        try:
            return self._http.json(reply)
        except TransientError:
            self._http.raise_for_status(reply)  # a non-JSON error page: the status decides
            raise

    def _message(self, error: dict[str, Any]) -> str:
        return self._http.redact(error.get("message") or "")

    def _raise_for_error(self, error: dict[str, Any], reply: Reply, *, alone: bool) -> None:
        """Raise for an error object that concerns the whole request; return when it only says
        the symbol cannot be served (not found, or beyond the plan inside a batch).
        `alone`: the error is the whole answer, not one entry among others in a batch."""
        code = _code(error)
        message = self._message(error)
        lower = message.lower()
        if code == 429:
            if "for the day" in lower or "daily" in lower:
                raise QuotaExhaustedError(f"twelvedata: {message}")
            retry_after = retry_after_parse(reply.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = self._seconds_to_next_minute()
            raise RateLimitedError(f"twelvedata: {message}", retry_after=retry_after)
        if code is not None and code >= 500:
            raise TransientError(f"twelvedata: {message}")
        if code == 401 or _is_about_the_key(lower):
            raise PermanentError(f"twelvedata: {message}")
        if alone and (code == 403 or "premium" in lower or " plan" in lower):
            raise PermanentError(f"twelvedata: {message}")

    def _seconds_to_next_minute(self) -> float:
        """Credits are counted per clock minute, so they come back at the next one."""
        now = self._clock()
        return 60.0 - now.second - now.microsecond / 1_000_000


def _unwrap_single(data: Any, symbol: str) -> Any:
    """A one-symbol answer comes unwrapped; accept the batch shape too, should it ever come."""
    if isinstance(data, dict) and "symbol" not in data and "status" not in data:
        wrapped = _entries_by_symbol(data, [symbol]).get(symbol)
        if isinstance(wrapped, dict):
            return wrapped
    return data


def _entries_by_symbol(data: Any, symbols: list[str]) -> dict[str, Any]:
    """The batch entry of each requested symbol; keys that are not requested symbols are ignored."""
    if not isinstance(data, dict):
        raise TransientError(f"twelvedata: unexpected body {str(data)[:200]!r}")
    by_upper = {str(key).upper(): value for key, value in data.items()}
    return {symbol: data.get(symbol, by_upper.get(symbol.upper())) for symbol in symbols}


def _quote(symbol: str, entry: dict[str, Any]) -> Quote | None:
    price = price_parse(entry.get("close"))
    # last_quote_at is the last minute bar; timestamp only the day bar's opening.
    as_of = utc_from_unix(entry.get("last_quote_at")) or utc_from_unix(entry.get("timestamp"))
    if price is None or as_of is None:
        return None  # known symbol, no usable price: missing this time
    currency = entry.get("currency")
    return Quote(
        symbol=symbol,
        price=price,
        as_of=as_of,
        currency=currency if isinstance(currency, str) and currency else None,
        previous_close=price_parse(entry.get("previous_close")),
    )


def _is_about_the_key(lower: str) -> bool:
    # "**apikey** parameter is incorrect…"; plan upsells also say "upgrading your API Key", so
    # the bare words are not enough.
    return "apikey" in lower or (
        "api key" in lower and any(word in lower for word in ("invalid", "incorrect", "missing"))
    )


def _is_error(data: Any) -> bool:
    return isinstance(data, dict) and data.get("status") == "error"


def _code(error: dict[str, Any]) -> int | None:
    try:
        return int(error.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None
