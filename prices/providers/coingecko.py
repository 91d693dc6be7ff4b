"""CoinGecko (crypto): `/simple/price` for batches of coin ids, `/coins/{id}/market_chart` for
daily history, `/search` for coins by id, name and ticker. No profiles: a coin has no sector or
country (allocation files it under "Crypto").

Symbols are CoinGecko ids (`bitcoin`), not tickers. Prices in USD, as the market priced the coin
each day: coins have no splits, so there is nothing to un-adjust (a token redenomination or
migration is not reported, and shows as a jump)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from prices.providers.base import (
    SEARCH_RESULTS,
    Bar,
    PermanentError,
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
    looks_like_html,
    price_parse,
    text_field,
    unique,
    utc_from_unix,
)

VS_CURRENCY = "usd"
KEY_HEADER = "x-cg-demo-api-key"


class CoinGeckoProvider(HttpProvider):
    name = "coingecko"
    max_symbols_per_request = 50  # a safe batch of ids (URL length)
    requests_per_second = 30 / 60  # the demo plan allows about 30 calls a minute
    daily_quota = None

    def _get(self, path: str, params: dict[str, str]) -> Reply:
        headers = {KEY_HEADER: self._http.api_key} if self._http.api_key else None
        return self._http.get(path, params=params, headers=headers)

    # --- latest quotes

    def latest_quotes(self, symbols: list[str]) -> QuoteBatch:
        symbols = unique(symbols)
        check_batch_size(symbols, self.batch_size_ceiling(), self.name)
        if not symbols:
            return QuoteBatch()
        reply = self._get(
            "/simple/price",
            {
                "ids": ",".join(symbols),
                "vs_currencies": VS_CURRENCY,
                "include_last_updated_at": "true",
            },
        )
        self._http.raise_for_status(reply)
        data = self._http.json(reply)
        if not isinstance(data, dict):
            raise TransientError(f"coingecko: unexpected body {self._http.snippet(reply)!r}")
        self._raise_for_body_error(data, symbols)
        by_lower = {str(key).lower(): value for key, value in data.items()}
        batch = QuoteBatch()
        for symbol in symbols:
            entry = data.get(symbol, by_lower.get(symbol.lower()))
            if entry is None:
                batch.unknown.add(symbol)  # CoinGecko leaves out ids it does not know
                continue
            if not isinstance(entry, dict):
                continue
            price = price_parse(entry.get(VS_CURRENCY))
            as_of = utc_from_unix(entry.get("last_updated_at"))
            if price is None or as_of is None:
                continue  # a known coin without a usable USD price: missing this time
            batch.quotes[symbol] = Quote(symbol=symbol, price=price, as_of=as_of, currency="USD")
        return batch

    def _raise_for_body_error(self, data: dict[str, Any], symbols: list[str]) -> None:
        """Errors carried in a 200 body: `{"status": {"error_code": …}}` or `{"error": …}`. The key
        could also be a coin id, so only when it was not asked for."""
        status = data.get("status")
        if "status" not in symbols and isinstance(status, dict) and "error_code" in status:
            message = self._http.redact(status.get("error_message") or status)
            if str(status.get("error_code")) == "429":
                raise RateLimitedError(f"coingecko: {message}")
            raise PermanentError(f"coingecko: {message}")
        if "error" not in symbols and "error" in data:
            raise PermanentError(f"coingecko: {self._http.redact(data['error'])}")

    # --- search

    def search(self, query: str) -> list[SearchHit]:
        """Coins under their ticker, with their id as the provider symbol; prices are in USD."""
        reply = self._get("/search", {"query": query})
        self._http.raise_for_status(reply)
        data = self._http.json(reply)
        if not isinstance(data, dict):
            raise TransientError(f"coingecko: unexpected search body {self._http.snippet(reply)!r}")
        self._raise_for_body_error(data, [])
        hits = []
        for coin in list_field(data, "coins", http=self._http, reply=reply, what="search")[:SEARCH_RESULTS]:
            coin_id = text_field(coin.get("id")) if isinstance(coin, dict) else ""
            if not coin_id:
                continue
            ticker = text_field(coin.get("symbol")).upper()
            hits.append(SearchHit(symbol=ticker or coin_id.upper(), name=text_field(coin.get("name")), exchange="",
                                  currency="USD", asset_class="crypto", provider=self.name, provider_symbol=coin_id))
        return hits

    # --- daily history

    def daily_history(self, symbol: str, start: date, end: date) -> list[Bar]:
        if start > end:
            return []
        # The endpoint counts back from now, so the window must reach `start` from today.
        days = max(1, (self._clock().date() - start).days + 1)
        reply = self._get(
            f"/coins/{quote(symbol, safe='')}/market_chart",
            {"vs_currency": VS_CURRENCY, "days": str(days), "interval": "daily"},
        )
        if reply.status == 404 and not looks_like_html(reply):
            raise UnknownSymbolError(symbol, f"coingecko: {self._http.snippet(reply)}")
        self._http.raise_for_status(reply)
        data = self._http.json(reply)
        prices = data.get("prices") if isinstance(data, dict) else None
        if not isinstance(prices, list):
            raise TransientError(f"coingecko: no prices in {self._http.snippet(reply)!r}")
        bars: dict[date, Bar] = {}
        for point in prices:
            if not isinstance(point, list) or len(point) != 2:
                continue
            moment = _utc_from_ms(point[0])
            close = price_parse(point[1])
            if moment is None or close is None:
                continue
            day = moment.date()
            if start <= day <= end:
                # Daily points sit at 00:00 UTC, plus the live price of today at the end: for a
                # date with several points the latest one is its close.
                bars[day] = Bar(date=day, close=close)
        return [bars[day] for day in sorted(bars)]


def _utc_from_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    return utc_from_unix(int(value) // 1000)
