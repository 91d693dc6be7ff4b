"""Yahoo Finance (unofficial, no key): batch quotes from v7 behind a cookie + crumb, daily history
from the v8 chart endpoint, one symbol per request; search from v1 (no crumb), profiles from v10
quoteSummary (the same cookie + crumb as quotes).

The chart's closes are split-adjusted for every split up to the moment of the request, while Folio
stores what each day actually traded at: `daily_history` un-adjusts them with the split events the
same chart reports (see `_unadjusted`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prices.providers.base import (
    SEARCH_RESULTS,
    Bar,
    History,
    PermanentError,
    PriceProvider,
    ProfileFacts,
    Quote,
    QuoteBatch,
    SearchHit,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.http import (
    HttpClient,
    Reply,
    check_batch_size,
    list_field,
    looks_like_html,
    price_parse,
    text_field,
    unique,
    utc_from_unix,
)

# Yahoo's crumb is bound to a session cookie that this host sets (its answer itself is a 404).
DEFAULT_COOKIE_URL = "https://fc.yahoo.com"
# Yahoo answers 429 to obviously scripted user agents regardless of the request rate.
BROWSER_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
MAX_CRUMB_LENGTH = 64  # real crumbs are ~11 characters; anything long is an error page
# Yahoo's instrument types (quote `quoteType`, chart `meta.instrumentType`) as Folio's asset classes.
ASSET_CLASSES = {
    "EQUITY": "stock", "ETF": "etf", "MUTUALFUND": "fund", "MONEYMARKET": "fund", "CRYPTOCURRENCY": "crypto",
    "INDEX": "other", "CURRENCY": "other", "FUTURE": "other", "OPTION": "other",
}
# Decimal places of a stored close (PriceHistory.close): un-adjusted closes are rounded to these.
CLOSE_PLACES = 6
# Listing suffixes to the currency the listing trades in (no suffix: a US listing, USD). Search answers
# state no currency: it follows from the suffix (`BALN.SW` trades in CHF, `VOD.L` in pence).
SUFFIX_CURRENCY = {
    ".L": "GBp", ".IL": "USD", ".DE": "EUR", ".F": "EUR", ".PA": "EUR", ".AS": "EUR", ".BR": "EUR", ".MI": "EUR",
    ".MC": "EUR", ".LS": "EUR", ".VI": "EUR", ".HE": "EUR", ".IR": "EUR", ".SW": "CHF", ".TO": "CAD", ".V": "CAD",
    ".T": "JPY", ".HK": "HKD", ".AX": "AUD", ".NZ": "NZD", ".ST": "SEK", ".OL": "NOK", ".CO": "DKK",
    ".SI": "SGD", ".KS": "KRW", ".NS": "INR", ".BO": "INR", ".SA": "BRL", ".MX": "MXN", ".JO": "ZAc",
}
# Yahoo's fund sector keys (quoteSummary `sectorWeightings`), as the names its company profiles use.
FUND_SECTORS = {
    "realestate": "Real Estate", "consumer_cyclical": "Consumer Cyclical", "basic_materials": "Basic Materials",
    "consumer_defensive": "Consumer Defensive", "technology": "Technology",
    "communication_services": "Communication Services", "financial_services": "Financial Services",
    "utilities": "Utilities", "industrials": "Industrials", "energy": "Energy", "healthcare": "Healthcare",
}


class YahooProvider(PriceProvider):
    name = "yahoo"
    max_symbols_per_request = 50  # a safe v7 batch (URL length, Yahoo's own cap)
    # Unofficial and throttled by IP without notice: one request every 2 s stays clear of it.
    requests_per_second = 0.5
    daily_quota = None

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
        cookie_url: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._http = HttpClient(
            self.name,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            user_agent=BROWSER_USER_AGENT,
        )
        if cookie_url is None and _is_yahoo_host(self._http.base_url):
            cookie_url = DEFAULT_COOKIE_URL
        # None behind a proxy or stub: the getcrumb host is then expected to set the cookie.
        self._cookie_url = cookie_url
        self._crumb: str | None = None
        self._crumb_lock = threading.Lock()  # one crumb per instance, shared by worker threads
        self._clock = clock or (lambda: datetime.now(UTC))

    # --- latest quotes

    def latest_quotes(self, symbols: list[str]) -> QuoteBatch:
        symbols = unique(symbols)
        check_batch_size(symbols, self.batch_size_ceiling(), self.name)
        if not symbols:
            return QuoteBatch()
        crumb = self._crumb_get()
        reply = self._quote_request(symbols, crumb)
        if _is_invalid_crumb(reply):
            # Crumbs expire with their cookie; a fresh pair is worth exactly one more request.
            reply = self._quote_request(symbols, self._crumb_refresh(stale=crumb))
            if _is_invalid_crumb(reply):
                # Yahoo refusing a crumb it just issued is a block of this client, not a property
                # of the symbols: a later attempt may pass.
                raise TransientError("yahoo: quote endpoint rejected a freshly issued crumb")
        self._http.raise_for_status(reply)
        return self._quote_batch(symbols, self._http.json(reply))

    def _quote_request(self, symbols: list[str], crumb: str) -> Reply:
        return self._http.get(
            "/v7/finance/quote", params={"symbols": ",".join(symbols), "crumb": crumb}
        )

    def _quote_batch(self, symbols: list[str], data: Any) -> QuoteBatch:
        response = data.get("quoteResponse") if isinstance(data, dict) else None
        results = response.get("result") if isinstance(response, dict) else None
        if not isinstance(results, list):
            raise TransientError(f"yahoo: unexpected quote body {str(data)[:200]!r}")
        wanted = {symbol.upper(): symbol for symbol in symbols}
        batch = QuoteBatch()
        answered: set[str] = set()
        for item in results:
            if not isinstance(item, dict):
                continue
            symbol = wanted.get(str(item.get("symbol", "")).upper())
            if symbol is None:
                continue  # not something we asked for
            answered.add(symbol)
            price = price_parse(item.get("regularMarketPrice"))
            places = _price_places(item.get("priceHint"))
            previous = price_parse(item.get("regularMarketPreviousClose"))
            as_of = utc_from_unix(item.get("regularMarketTime"))
            if price is None or as_of is None:
                # Yahoo knows the symbol but has no usable price: missing this time, not unknown.
                continue
            batch.quotes[symbol] = Quote(
                symbol=symbol,
                price=_rounded(price, places),
                as_of=as_of,
                currency=text_field(item.get("currency")) or None,
                previous_close=_rounded(previous, places) if previous else None,
                asset_class=ASSET_CLASSES.get(text_field(item.get("quoteType"))),
            )
        # Yahoo silently leaves out the symbols it does not know.
        batch.unknown = {symbol for symbol in symbols if symbol not in answered}
        return batch

    # --- crumb

    def _crumb_get(self) -> str:
        with self._crumb_lock:
            if self._crumb is None:
                self._crumb = self._crumb_fetch()
            return self._crumb

    def _crumb_refresh(self, *, stale: str) -> str:
        with self._crumb_lock:
            if self._crumb in (None, stale):  # another thread may have refreshed it already
                self._crumb = None
                self._http.session.cookies.clear()  # the crumb is bound to the old cookie
                self._crumb = self._crumb_fetch()
            return self._crumb

    def _crumb_fetch(self) -> str:
        if self._cookie_url:
            # Only the cookie it sets matters; its status (404 on the real host) does not.
            self._http.get(self._cookie_url)
        reply = self._http.get("/v1/test/getcrumb")
        self._http.raise_for_status(reply)
        crumb = self._http.text(reply).strip()
        if (
            not crumb
            or len(crumb) > MAX_CRUMB_LENGTH
            or any(char.isspace() or char in "{}<>" for char in crumb)
        ):
            raise TransientError(f"yahoo: getcrumb answered {self._http.snippet(reply)!r}")
        return crumb

    # --- daily history

    def daily_history(self, symbol: str, start: date, end: date) -> list[Bar]:
        if start > end:
            return []
        now = self._clock()
        # Bars are stamped at the session open in the exchange's zone, which for Asia-Pacific
        # exchanges is the previous UTC day: ask for a day more on each side, filter on local dates.
        # The closes come adjusted for every split up to now, but only the split events between
        # period1 and period2 are listed: the window reaches the present so that each split after
        # `end` is known too (the bars past `end` that this brings are dropped).
        params = {
            "period1": str(_unix_midnight(start - timedelta(days=1))),
            "period2": str(max(_unix_midnight(end + timedelta(days=2)), int(now.timestamp()))),
            "interval": "1d",
            "events": "div,splits",
        }
        reply = self._http.get(f"/v8/finance/chart/{quote(symbol, safe='')}", params=params)
        if reply.status == 404:
            error = _chart_error(self._try_json(reply))
            if error is not None:
                raise UnknownSymbolError(symbol, f"yahoo: {error.get('description') or error}")
        self._http.raise_for_status(reply)
        data = self._http.json(reply)
        chart = data.get("chart") if isinstance(data, dict) else None
        if not isinstance(chart, dict):
            raise TransientError(f"yahoo: unexpected chart body {self._http.snippet(reply)!r}")
        error = _chart_error(data)
        if error is not None:
            if error.get("code") == "Not Found":
                raise UnknownSymbolError(symbol, f"yahoo: {error.get('description') or error}")
            raise PermanentError(f"yahoo: chart error {error}")
        results = chart.get("result")
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise TransientError(f"yahoo: chart without result {self._http.snippet(reply)!r}")
        return _bars(results[0], start, end, now=now)

    # --- search

    def search(self, query: str) -> list[SearchHit]:
        reply = self._http.get(
            "/v1/finance/search", params={"q": query, "quotesCount": str(SEARCH_RESULTS), "newsCount": "0"}
        )
        self._http.raise_for_status(reply)
        hits = []
        for item in list_field(self._http.json(reply), "quotes", http=self._http, reply=reply, what="search"):
            symbol = text_field(item.get("symbol")) if isinstance(item, dict) else ""
            # News-only entities and Yahoo's non-Finance listings carry no price.
            if not symbol or item.get("isYahooFinance") is False:
                continue
            asset_class = ASSET_CLASSES.get(text_field(item.get("quoteType")), "other")
            hits.append(SearchHit(
                symbol=symbol.upper(), name=text_field(item.get("longname")) or text_field(item.get("shortname")),
                exchange=text_field(item.get("exchDisp")) or text_field(item.get("exchange")),
                currency=suffix_currency(symbol, asset_class), asset_class=asset_class, provider=self.name))
        return hits

    # --- profile

    def profile(self, symbol: str) -> ProfileFacts:
        """`assetProfile` for companies, `topHoldings.sectorWeightings` for funds."""
        path = f"/v10/finance/quoteSummary/{quote(symbol, safe='')}"
        modules = {"modules": "assetProfile,price,topHoldings"}
        crumb = self._crumb_get()
        reply = self._http.get(path, params={**modules, "crumb": crumb})
        if reply.status == 401:
            # The crumb expired with its cookie: one fresh pair is worth one more request.
            reply = self._http.get(path, params={**modules, "crumb": self._crumb_refresh(stale=crumb)})
        data = self._try_json(reply)
        summary = data.get("quoteSummary") if isinstance(data, dict) else None
        error = summary.get("error") if isinstance(summary, dict) else None
        if reply.status == 404 and isinstance(error, dict):
            raise UnknownSymbolError(symbol, f"yahoo: {self._http.redact(error.get('description') or error)}")
        self._http.raise_for_status(reply)
        results = summary.get("result") if isinstance(summary, dict) else None
        if not isinstance(results, list) or not results or not isinstance(results[0], dict):
            raise TransientError(f"yahoo: unexpected quoteSummary body {self._http.snippet(reply)!r}")
        result = results[0]
        profile = result.get("assetProfile") if isinstance(result.get("assetProfile"), dict) else {}
        holdings = result.get("topHoldings") if isinstance(result.get("topHoldings"), dict) else {}
        weights: dict[str, str] = {}
        for entry in holdings.get("sectorWeightings") or []:
            for key, value in (entry.items() if isinstance(entry, dict) else ()):
                weight = _weight(value)
                if weight is not None:
                    weights[FUND_SECTORS.get(key, key.replace("_", " ").title())] = str(weight)
        return ProfileFacts(sector=text_field(profile.get("sector")), industry=text_field(profile.get("industry")),
                            country=text_field(profile.get("country")), sector_weights=weights)

    def _try_json(self, reply: Reply) -> Any:
        if looks_like_html(reply):
            return None
        try:
            return self._http.json(reply)
        except TransientError:
            return None


def suffix_currency(symbol: str, asset_class: str) -> str:
    """The currency of a Yahoo listing, from its suffix (BTC-EUR: EUR; BALN.SW: CHF; AAPL: USD)."""
    if asset_class == "crypto" and "-" in symbol:
        return symbol.rsplit("-", 1)[1][:3].upper()
    if "." in symbol:
        return SUFFIX_CURRENCY.get("." + symbol.rsplit(".", 1)[1].upper(), "USD")
    return "USD"


def _weight(value: Any) -> Decimal | None:
    """A fund's sector weight: a fraction of the whole, or None for anything else."""
    raw = value.get("raw") if isinstance(value, dict) else value
    number = price_parse(raw)  # positive and finite, or None
    return number if number is not None and number <= 1 else None


def _price_places(hint: Any) -> int:
    """Decimal places of the instrument's prices: Yahoo's `priceHint` (2 for most stocks, more for
    pennies and coins). Its numbers carry float noise (183.7899932861328 for 183.79), cut here."""
    return hint if isinstance(hint, int) and not isinstance(hint, bool) and 0 <= hint <= CLOSE_PLACES \
        else CLOSE_PLACES


def _rounded(value: Fraction | Decimal, places: int) -> Decimal:
    """Half up to `places` (values are positive: floor(x + 1/2))."""
    return Decimal(floor(Fraction(value) * 10**places + Fraction(1, 2))).scaleb(-places)


def _bars(result: dict[str, Any], start: date, end: date, *, now: datetime) -> History:
    meta = result.get("meta")
    zone = _exchange_zone(meta)
    places = _price_places(meta.get("priceHint") if isinstance(meta, dict) else None)
    splits = _splits(result, zone, today=now.astimezone(zone).date())
    timestamps = result.get("timestamp") or []
    indicators = result.get("indicators") or {}
    quotes = indicators.get("quote") or [{}]
    closes = (quotes[0] if isinstance(quotes[0], dict) else {}).get("close") or []
    adjusted_list = indicators.get("adjclose") or []
    adjusted = (
        adjusted_list[0].get("adjclose")
        if adjusted_list and isinstance(adjusted_list[0], dict)
        else None
    )
    if not isinstance(timestamps, list) or not isinstance(closes, list):
        raise TransientError("yahoo: chart arrays are not arrays")
    if len(closes) != len(timestamps) or (
        adjusted is not None and len(adjusted) != len(timestamps)
    ):
        # The arrays are parallel by day: misaligned ones would put prices on the wrong dates.
        raise TransientError("yahoo: chart arrays of different lengths")
    bars: dict[date, Bar] = {}
    for index, stamp in enumerate(timestamps):
        moment = utc_from_unix(stamp)
        close = price_parse(closes[index])
        if moment is None or close is None:
            continue  # Yahoo pads days without a valid bar with null
        day = moment.astimezone(zone).date()
        if start <= day <= end:
            # The last entry can be today's live bar repeating a date: the later one wins.
            actual = _unadjusted(close, day, splits, places=places)
            if actual is None:
                continue
            bars[day] = Bar(
                date=day,
                close=actual,
                adjusted_close=price_parse(adjusted[index]) if adjusted is not None else None,
            )
    facts = meta if isinstance(meta, dict) else {}
    return History((bars[day] for day in sorted(bars)), currency=text_field(facts.get("currency")) or None,
                   asset_class=ASSET_CLASSES.get(text_field(facts.get("instrumentType"))))


def _splits(result: dict[str, Any], zone: tzinfo, *, today: date) -> list[tuple[date, Fraction]]:
    """The split events of a chart as (ex-date in the exchange's zone, shares after / shares
    before): `{"events": {"splits": {"<ts>": {"date": <ts>, "numerator": 4, "denominator": 1,
    "splitRatio": "4:1"}}}}`. An event that cannot be read raises: a close un-adjusted with a
    wrong ratio (or none) would be stored as a wrong price, so the range is better fetched later."""
    events = result.get("events")
    if events is None:
        return []
    if not isinstance(events, dict):
        raise TransientError(f"yahoo: unreadable chart events {str(events)[:200]!r}")
    splits = events.get("splits")
    if splits is None:
        return []  # no split inside the window (dividends alone come without the key)
    if not isinstance(splits, dict):
        raise TransientError(f"yahoo: unreadable split events {str(splits)[:200]!r}")
    found = []
    for key, event in splits.items():
        moment = utc_from_unix(event.get("date") or key) if isinstance(event, dict) else None
        ratio = _split_ratio(event) if isinstance(event, dict) else None
        if moment is None or ratio is None:
            raise TransientError(f"yahoo: unreadable split event {str(event)[:200]!r}")
        day = moment.astimezone(zone).date()
        # A split dated after today has not happened: no close can be adjusted for it yet.
        if day <= today:
            found.append((day, ratio))
    return found


def _split_ratio(event: dict[str, Any]) -> Fraction | None:
    """Shares after the split per share before it (2 for "2:1", 1/10 for a "1:10" reverse
    split), exactly; from numerator/denominator, else from the "splitRatio" text."""
    numerator, denominator = price_parse(event.get("numerator")), price_parse(event.get("denominator"))
    if numerator is None or denominator is None:
        text = event.get("splitRatio")
        parts = text.replace("/", ":").split(":") if isinstance(text, str) else []
        if len(parts) != 2:
            return None
        numerator, denominator = price_parse(parts[0]), price_parse(parts[1])
        if numerator is None or denominator is None:
            return None
    return Fraction(numerator) / Fraction(denominator)


def _unadjusted(close: Decimal, day: date, splits: list[tuple[date, Fraction]], *, places: int) -> Decimal | None:
    """What `day` actually closed at: Yahoo's split-adjusted close times the ratio of every split
    dated after it (a split on `day` itself is already in that day's price). Exact arithmetic in
    fractions, one rounding at the end, half up to the instrument's price places. None when that
    rounds to 0: a price too small to store is missing, never 0."""
    factor = Fraction(1)
    for split_day, ratio in splits:
        if split_day > day:
            factor *= ratio
    actual = _rounded(Fraction(close) * factor, places)
    return actual if actual > 0 else None


def _exchange_zone(meta: Any) -> tzinfo:
    """The exchange's zone by name (DST-correct over a long history); `gmtoffset` is only the
    offset in force now, so it is the fallback."""
    if not isinstance(meta, dict):
        return UTC
    name = meta.get("exchangeTimezoneName")
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    offset = meta.get("gmtoffset")
    if isinstance(offset, int) and not isinstance(offset, bool) and abs(offset) < 86400:
        return timezone(timedelta(seconds=offset))
    return UTC


def _chart_error(data: Any) -> dict[str, Any] | None:
    chart = data.get("chart") if isinstance(data, dict) else None
    error = chart.get("error") if isinstance(chart, dict) else None
    return error if isinstance(error, dict) and error else None


def _is_invalid_crumb(reply: Reply) -> bool:
    return reply.status == 401 and "crumb" in reply.text.lower()


def _unix_midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _is_yahoo_host(base_url: str) -> bool:
    host = urlsplit(base_url).hostname or ""
    return host == "yahoo.com" or host.endswith(".yahoo.com")
