"""Instrument search on the providers' own search endpoints, one request per query (pacing, retries and
caching are the caller's: prices/search.py).

- Yahoo `GET /v1/finance/search?q=` (no crumb needed) — no currency in the answer: it follows from the
  listing's suffix (`BALN.SW` trades in CHF, `VOD.L` in pence).
- Twelve Data `GET /symbol_search?symbol=` — states currency, exchange and type; errors in the body.
- CoinGecko `GET /search?query=` — coins by id, name and ticker; prices in USD (prices/providers/coingecko.py).
- simulated — its own universe, offline: the symbols it anchors and lists, by ticker or name, and any
  other well-formed ticker except the ZZ… ones it does not know.

Each answer is a list of SearchHit in the provider's order. Failures raise the errors of
prices/providers/base.py like every other call, so the gateway retries and paces them the same way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from prices.providers import twelvedata, yahoo
from prices.providers.base import SYMBOL_PATTERN, PermanentError, PriceProvider, TransientError
from prices.providers.simulated import ANCHORS, CRYPTO, ETFS

# Results asked of a provider per query: a dropdown's worth (Twelve Data allows up to 120).
SEARCH_RESULTS = 10
# Yahoo listing suffixes to the currency the listing trades in (no suffix: a US listing, USD).
YAHOO_SUFFIX_CURRENCY = {
    ".L": "GBp", ".IL": "USD", ".DE": "EUR", ".F": "EUR", ".PA": "EUR", ".AS": "EUR", ".BR": "EUR", ".MI": "EUR",
    ".MC": "EUR", ".LS": "EUR", ".VI": "EUR", ".HE": "EUR", ".IR": "EUR", ".SW": "CHF", ".TO": "CAD", ".V": "CAD",
    ".T": "JPY", ".HK": "HKD", ".AX": "AUD", ".NZ": "NZD", ".ST": "SEK", ".OL": "NOK", ".CO": "DKK",
    ".SI": "SGD", ".KS": "KRW", ".NS": "INR", ".BO": "INR", ".SA": "BRL", ".MX": "MXN", ".JO": "ZAc",
}
# The names of the simulated provider's universe, so the offline demo searches like a real provider.
SIMULATED_NAMES = {
    "AAPL": "Apple Inc.", "MSFT": "Microsoft Corporation", "GOOGL": "Alphabet Inc.", "AMZN": "Amazon.com, Inc.",
    "NVDA": "NVIDIA Corporation", "META": "Meta Platforms, Inc.", "TSLA": "Tesla, Inc.",
    "JPM": "JPMorgan Chase & Co.", "V": "Visa Inc.", "JNJ": "Johnson & Johnson", "PG": "Procter & Gamble Co.",
    "KO": "The Coca-Cola Company", "XOM": "Exxon Mobil Corporation", "BRK-B": "Berkshire Hathaway Inc.",
    "COST": "Costco Wholesale Corporation", "SPY": "SPDR S&P 500 ETF Trust", "VOO": "Vanguard S&P 500 ETF",
    "VTI": "Vanguard Total Stock Market ETF", "QQQ": "Invesco QQQ Trust",
    "VXUS": "Vanguard Total International Stock ETF",
    "BND": "Vanguard Total Bond Market ETF", "GLD": "SPDR Gold Shares", "VNQ": "Vanguard Real Estate ETF",
    "SCHD": "Schwab U.S. Dividend Equity ETF", "IWM": "iShares Russell 2000 ETF", "EFA": "iShares MSCI EAFE ETF",
    "AGG": "iShares Core U.S. Aggregate Bond ETF", "VT": "Vanguard Total World Stock ETF",
    "TLT": "iShares 20+ Year Treasury Bond ETF", "BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana",
    "ADA": "Cardano", "XRP": "XRP", "DOGE": "Dogecoin", "DOT": "Polkadot", "LTC": "Litecoin", "AVAX": "Avalanche",
    "LINK": "Chainlink", "BNB": "BNB", "MATIC": "Polygon",
}
SIMULATED_UNIVERSE = sorted(set(ANCHORS) | CRYPTO | ETFS)


@dataclass(frozen=True)
class SearchHit:
    """One instrument a provider's search found, in Folio's terms: `symbol` is what a trade names,
    `provider_symbol` the provider's own name for it when different (CoinGecko ids)."""

    symbol: str
    name: str
    exchange: str
    currency: str
    asset_class: str
    provider: str
    provider_symbol: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def provider_search(provider: PriceProvider, query: str) -> list[SearchHit]:
    """One search request to `provider` (a client from prices.providers.provider_get)."""
    try:
        search = SEARCHES[provider.name]
    except KeyError:
        raise PermanentError(f"{provider.name}: no search endpoint") from None
    return search(provider, query)


def searchable(name: str) -> bool:
    return name in SEARCHES


def yahoo_currency(symbol: str, asset_class: str) -> str:
    """The currency of a Yahoo listing, from its suffix (BTC-EUR: EUR; BALN.SW: CHF; AAPL: USD)."""
    if asset_class == "crypto" and "-" in symbol:
        return symbol.rsplit("-", 1)[1][:3].upper()
    if "." in symbol:
        return YAHOO_SUFFIX_CURRENCY.get("." + symbol.rsplit(".", 1)[1].upper(), "USD")
    return "USD"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _entries(data: Any, key: str, http: Any, reply: Any) -> list:
    """The answer's list under `key`; any other shape is garbage (retried), never "nothing found"."""
    rows = data.get(key) if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise TransientError(f"{http.provider}: unexpected search body {http.snippet(reply)!r}")
    return rows


def _yahoo(provider: PriceProvider, query: str) -> list[SearchHit]:
    http = provider._http
    reply = http.get("/v1/finance/search", params={"q": query, "quotesCount": str(SEARCH_RESULTS), "newsCount": "0"})
    http.raise_for_status(reply)
    hits = []
    for item in _entries(http.json(reply), "quotes", http, reply):
        symbol = _text(item.get("symbol")) if isinstance(item, dict) else ""
        # News-only entities and Yahoo's non-Finance listings carry no price.
        if not symbol or item.get("isYahooFinance") is False:
            continue
        asset_class = yahoo.ASSET_CLASSES.get(_text(item.get("quoteType")), "other")
        hits.append(SearchHit(
            symbol=symbol.upper(), name=_text(item.get("longname")) or _text(item.get("shortname")),
            exchange=_text(item.get("exchDisp")) or _text(item.get("exchange")),
            currency=yahoo_currency(symbol, asset_class), asset_class=asset_class, provider="yahoo"))
    return hits


def _twelvedata(provider: PriceProvider, query: str) -> list[SearchHit]:
    http = provider._http
    reply = http.get("/symbol_search", params=provider._params(symbol=query, outputsize=str(SEARCH_RESULTS)))
    data = provider._json(reply)
    if twelvedata._is_error(data):
        provider._raise_for_error(data, reply, alone=True)
        raise PermanentError(f"twelvedata: search refused: {provider._message(data)}")
    http.raise_for_status(reply)
    hits = []
    for row in _entries(data, "data", http, reply):
        symbol = _text(row.get("symbol")) if isinstance(row, dict) else ""
        if not symbol:
            continue
        hits.append(SearchHit(
            symbol=symbol.upper(), name=_text(row.get("instrument_name")), exchange=_text(row.get("exchange")),
            currency=_text(row.get("currency")).upper() or "USD",
            asset_class=twelvedata.ASSET_CLASSES.get(_text(row.get("instrument_type")), "other"),
            provider="twelvedata"))
    return hits


def _coingecko(provider: PriceProvider, query: str) -> list[SearchHit]:
    http = provider._http
    reply = provider._get("/search", {"query": query})
    http.raise_for_status(reply)
    data = http.json(reply)
    if not isinstance(data, dict):
        raise TransientError(f"coingecko: unexpected search body {http.snippet(reply)!r}")
    provider._raise_for_body_error(data, [])
    hits = []
    for coin in _entries(data, "coins", http, reply)[:SEARCH_RESULTS]:
        coin_id = _text(coin.get("id")) if isinstance(coin, dict) else ""
        ticker = _text(coin.get("symbol")).upper() if coin_id else ""
        if not coin_id:
            continue
        hits.append(SearchHit(symbol=ticker or coin_id.upper(), name=_text(coin.get("name")), exchange="",
                              currency="USD", asset_class="crypto", provider="coingecko", provider_symbol=coin_id))
    return hits


def _simulated(provider: PriceProvider, query: str) -> list[SearchHit]:
    wanted = query.strip().lower()
    by_name = [symbol for symbol in SIMULATED_UNIVERSE if wanted in SIMULATED_NAMES.get(symbol, "").lower()]
    by_symbol = [symbol for symbol in SIMULATED_UNIVERSE if symbol.lower().startswith(wanted)]
    found = sorted(set(by_name) | set(by_symbol), key=lambda symbol: (symbol.lower() != wanted, symbol))
    ticker = query.strip().upper()
    # It prices any ticker it does not list (AAP as well as AAPL), except the ZZ… ones; a query that named
    # something ("bitcoin") is a name, not a ticker.
    if not by_name and ticker not in found and SYMBOL_PATTERN.match(ticker) and not ticker.startswith("ZZ"):
        found.append(ticker)
    hits = []
    for symbol in found:
        asset_class = "crypto" if symbol in CRYPTO else "etf" if symbol in ETFS else "stock"
        hits.append(SearchHit(symbol=symbol, name=SIMULATED_NAMES.get(symbol, ""), exchange="",
                              currency=yahoo_currency(symbol, asset_class) if asset_class != "crypto" else "USD",
                              asset_class=asset_class, provider="simulated"))
    return hits


SEARCHES = {"yahoo": _yahoo, "twelvedata": _twelvedata, "coingecko": _coingecko, "simulated": _simulated}
