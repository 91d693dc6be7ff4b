"""Instrument profiles from the providers: sector, industry, country, and a fund's sector breakdown —
one request per instrument (pacing and storing are the caller's: prices/profiles.py).

- Yahoo `GET /v10/finance/quoteSummary/{SYMBOL}?modules=assetProfile,price,topHoldings&crumb=…` (the same
  cookie + crumb as v7 quotes): `assetProfile` for companies, `topHoldings.sectorWeightings` for funds.
- Twelve Data `GET /profile?symbol=` (higher plans; others get a 403 error body, a permanent failure).
- CoinGecko: no request — a coin has no sector or country; allocation files it under "Crypto".
- simulated: its own universe, offline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from prices.providers import twelvedata
from prices.providers.base import PermanentError, PriceProvider, TransientError, UnknownSymbolError
from prices.providers.http import price_parse

# Yahoo's fund sector keys, as the names its company profiles use.
YAHOO_SECTORS = {
    "realestate": "Real Estate", "consumer_cyclical": "Consumer Cyclical", "basic_materials": "Basic Materials",
    "consumer_defensive": "Consumer Defensive", "technology": "Technology",
    "communication_services": "Communication Services", "financial_services": "Financial Services",
    "utilities": "Utilities", "industrials": "Industrials", "energy": "Energy", "healthcare": "Healthcare",
}
SIMULATED_PROFILES = {
    "AAPL": ("Technology", "Consumer Electronics", "United States"),
    "MSFT": ("Technology", "Software—Infrastructure", "United States"),
    "GOOGL": ("Communication Services", "Internet Content & Information", "United States"),
    "AMZN": ("Consumer Cyclical", "Internet Retail", "United States"),
    "NVDA": ("Technology", "Semiconductors", "United States"),
    "META": ("Communication Services", "Internet Content & Information", "United States"),
    "TSLA": ("Consumer Cyclical", "Auto Manufacturers", "United States"),
    "JPM": ("Financial Services", "Banks—Diversified", "United States"),
    "V": ("Financial Services", "Credit Services", "United States"),
    "JNJ": ("Healthcare", "Drug Manufacturers—General", "United States"),
    "PG": ("Consumer Defensive", "Household & Personal Products", "United States"),
    "KO": ("Consumer Defensive", "Beverages—Non-Alcoholic", "United States"),
    "XOM": ("Energy", "Oil & Gas Integrated", "United States"),
    "BRK-B": ("Financial Services", "Insurance—Diversified", "United States"),
    "COST": ("Consumer Defensive", "Discount Stores", "United States"),
}
# Funds of the simulated universe with a breakdown, as a provider would give it; the rest have none.
SIMULATED_FUND_SECTORS = {
    "SPY": {"Technology": "0.32", "Financial Services": "0.13", "Healthcare": "0.11", "Consumer Cyclical": "0.10",
            "Communication Services": "0.09", "Industrials": "0.08", "Consumer Defensive": "0.06",
            "Energy": "0.04", "Utilities": "0.03", "Real Estate": "0.02", "Basic Materials": "0.02"},
    "QQQ": {"Technology": "0.50", "Communication Services": "0.16", "Consumer Cyclical": "0.14",
            "Consumer Defensive": "0.06", "Healthcare": "0.06", "Industrials": "0.05", "Utilities": "0.01",
            "Financial Services": "0.01", "Basic Materials": "0.01"},
}
SIMULATED_FUND_COUNTRIES = {
    "SPY": {"United States": "1"}, "VOO": {"United States": "1"}, "VTI": {"United States": "1"},
    "QQQ": {"United States": "0.97", "Netherlands": "0.01", "United Kingdom": "0.01", "China": "0.01"},
    "SCHD": {"United States": "1"}, "VNQ": {"United States": "1"}, "BND": {"United States": "1"},
    "VXUS": {"Japan": "0.15", "United Kingdom": "0.09", "China": "0.08", "Canada": "0.08", "France": "0.07",
             "Switzerland": "0.06", "Germany": "0.05", "Taiwan": "0.05", "India": "0.05", "Australia": "0.05"},
}


@dataclass(frozen=True)
class ProfileFacts:
    sector: str = ""
    industry: str = ""
    country: str = ""
    sector_weights: dict[str, str] = field(default_factory=dict)  # fractions as decimal strings
    country_weights: dict[str, str] = field(default_factory=dict)


def provider_profile(provider: PriceProvider, symbol: str) -> ProfileFacts | None:
    """One profile request for `symbol` (the provider's own symbol); None when the provider has no
    profiles at all (nothing to ask)."""
    fetch = PROFILES.get(provider.name)
    return fetch(provider, symbol) if fetch else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _weight(value: Any) -> Decimal | None:
    raw = value.get("raw") if isinstance(value, dict) else value
    number = price_parse(raw)  # positive and finite, or None
    return number if number is not None and number <= 1 else None


def _yahoo(provider: PriceProvider, symbol: str) -> ProfileFacts:
    http = provider._http
    path = f"/v10/finance/quoteSummary/{quote(symbol, safe='')}"
    modules = {"modules": "assetProfile,price,topHoldings"}
    crumb = provider._crumb_get()
    reply = http.get(path, params={**modules, "crumb": crumb})
    if reply.status == 401:
        # The crumb expired with its cookie: one fresh pair is worth one more request.
        reply = http.get(path, params={**modules, "crumb": provider._crumb_refresh(stale=crumb)})
    data = provider._try_json(reply)
    summary = data.get("quoteSummary") if isinstance(data, dict) else None
    error = summary.get("error") if isinstance(summary, dict) else None
    if reply.status == 404 and isinstance(error, dict):
        raise UnknownSymbolError(symbol, f"yahoo: {http.redact(error.get('description') or error)}")
    http.raise_for_status(reply)
    results = summary.get("result") if isinstance(summary, dict) else None
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise TransientError(f"yahoo: unexpected quoteSummary body {http.snippet(reply)!r}")
    result = results[0]
    profile = result.get("assetProfile") if isinstance(result.get("assetProfile"), dict) else {}
    holdings = result.get("topHoldings") if isinstance(result.get("topHoldings"), dict) else {}
    weights: dict[str, str] = {}
    for entry in holdings.get("sectorWeightings") or []:
        for key, value in (entry.items() if isinstance(entry, dict) else ()):
            weight = _weight(value)
            if weight is not None:
                weights[YAHOO_SECTORS.get(key, key.replace("_", " ").title())] = str(weight)
    return ProfileFacts(sector=_text(profile.get("sector")), industry=_text(profile.get("industry")),
                        country=_text(profile.get("country")), sector_weights=weights)


def _twelvedata(provider: PriceProvider, symbol: str) -> ProfileFacts:
    http = provider._http
    reply = http.get("/profile", params=provider._params(symbol=symbol))
    data = provider._json(reply)
    if twelvedata._is_error(data):
        provider._raise_for_error(data, reply, alone=True)
        if twelvedata._code(data) == 404 or "not found" in provider._message(data).lower():
            raise UnknownSymbolError(symbol, f"twelvedata: {provider._message(data)}")
        raise PermanentError(f"twelvedata: profile refused: {provider._message(data)}")
    http.raise_for_status(reply)
    if not isinstance(data, dict) or "symbol" not in data:
        raise TransientError(f"twelvedata: unexpected profile body {http.snippet(reply)!r}")
    return ProfileFacts(sector=_text(data.get("sector")), industry=_text(data.get("industry")),
                        country=_text(data.get("country")))


def _simulated(provider: PriceProvider, symbol: str) -> ProfileFacts:
    if symbol.upper().startswith("ZZ"):
        raise UnknownSymbolError(symbol, f"simulated provider has no symbol {symbol}")
    sector, industry, country = SIMULATED_PROFILES.get(symbol, ("", "", ""))
    return ProfileFacts(sector=sector, industry=industry, country=country,
                        sector_weights=SIMULATED_FUND_SECTORS.get(symbol, {}),
                        country_weights=SIMULATED_FUND_COUNTRIES.get(symbol, {}))


PROFILES = {"yahoo": _yahoo, "twelvedata": _twelvedata, "simulated": _simulated}
