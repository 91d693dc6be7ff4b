"""The offline provider: deterministic prices per symbol, so the demo and tests need no network.

Each symbol gets a geometric random walk over calendar days from a fixed epoch, seeded from the
symbol's name, with drift and volatility typical of its asset class. The close of a symbol on a
date therefore never changes between runs or with the range asked for. Stocks and ETFs only have
closes on their exchange's sessions (holidays and weekends absent); crypto has one every day.
Symbols starting with "ZZ" are unknown to it, so the unknown-symbol path can be exercised offline.
Its symbols never split or pay dividends: each close is the day's actual price, and the adjusted
close the same number. It searches and profiles its own universe (the symbols it anchors and lists)
offline, so the demo searches and allocates like a real provider.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import numpy as np

from prices.market_calendar import calendar_get, sessions_between
from prices.providers.base import (
    SYMBOL_PATTERN,
    Bar,
    PriceProvider,
    ProfileFacts,
    Quote,
    QuoteBatch,
    SearchHit,
    UnknownSymbolError,
)
from prices.providers.yahoo import suffix_currency

EPOCH = date(2000, 1, 1)
HORIZON_DAYS = 366 * 45  # walks are computed once per symbol, up to 2045
ANCHOR_DATE = date(2026, 1, 2)  # where known symbols sit near their real-world level

CRYPTO = {"BTC", "ETH", "SOL", "ADA", "XRP", "DOGE", "DOT", "LTC", "AVAX", "LINK", "BNB", "MATIC"}
ETFS = {"SPY", "VOO", "VTI", "QQQ", "VXUS", "BND", "GLD", "VNQ", "SCHD", "IWM", "EFA", "AGG", "VT", "TLT"}
# Rough real-world levels, so the demo portfolio looks like one.
ANCHORS = {
    "AAPL": 270, "MSFT": 480, "GOOGL": 310, "AMZN": 230, "NVDA": 185, "META": 650, "TSLA": 440,
    "JPM": 320, "V": 350, "JNJ": 205, "PG": 145, "KO": 70, "XOM": 115, "BRK-B": 500, "COST": 900,
    "SPY": 680, "VOO": 625, "VTI": 335, "QQQ": 615, "VXUS": 73, "BND": 74, "GLD": 400, "VNQ": 89,
    "SCHD": 27, "BTC": 89000, "ETH": 3000, "SOL": 130,
}
UNIVERSE = sorted(set(ANCHORS) | CRYPTO | ETFS)
# The names of its universe, as search answers them.
NAMES = {
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
# Sector, industry and country of its companies, as a provider's profile would give them.
COMPANY_PROFILES = {
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
# Funds of its universe with a breakdown, as a provider would give it; the rest have none.
FUND_SECTORS = {
    "SPY": {"Technology": "0.32", "Financial Services": "0.13", "Healthcare": "0.11", "Consumer Cyclical": "0.10",
            "Communication Services": "0.09", "Industrials": "0.08", "Consumer Defensive": "0.06",
            "Energy": "0.04", "Utilities": "0.03", "Real Estate": "0.02", "Basic Materials": "0.02"},
    "QQQ": {"Technology": "0.50", "Communication Services": "0.16", "Consumer Cyclical": "0.14",
            "Consumer Defensive": "0.06", "Healthcare": "0.06", "Industrials": "0.05", "Utilities": "0.01",
            "Financial Services": "0.01", "Basic Materials": "0.01"},
}
FUND_COUNTRIES = {
    "SPY": {"United States": "1"}, "VOO": {"United States": "1"}, "VTI": {"United States": "1"},
    "QQQ": {"United States": "0.97", "Netherlands": "0.01", "United Kingdom": "0.01", "China": "0.01"},
    "SCHD": {"United States": "1"}, "VNQ": {"United States": "1"}, "BND": {"United States": "1"},
    "VXUS": {"Japan": "0.15", "United Kingdom": "0.09", "China": "0.08", "Canada": "0.08", "France": "0.07",
             "Switzerland": "0.06", "Germany": "0.05", "Taiwan": "0.05", "India": "0.05", "Australia": "0.05"},
}
# Suffix conventions (Yahoo-style) to the exchange whose calendar applies.
SUFFIX_MIC = {".L": "XLON", ".DE": "XETR", ".PA": "XPAR", ".AS": "XAMS", ".TO": "XTSE", ".SW": "XSWX",
              ".T": "XTKS", ".HK": "XHKG", ".AX": "XASX", ".MI": "XMIL", ".MC": "XMAD"}


@dataclass(frozen=True)
class Profile:
    annual_drift: float
    annual_volatility: float
    mic: str  # "" = trades every day


def _seed(symbol: str) -> int:
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big")


def profile_for(symbol: str) -> Profile:
    base = symbol.split("-")[0]
    if base in CRYPTO or symbol.endswith("-USD"):
        return Profile(annual_drift=0.25, annual_volatility=0.65, mic="")
    mic = next((m for suffix, m in SUFFIX_MIC.items() if symbol.endswith(suffix)), "XNYS")
    if symbol in ETFS:
        return Profile(annual_drift=0.07, annual_volatility=0.16, mic=mic)
    return Profile(annual_drift=0.09, annual_volatility=0.28, mic=mic)


@lru_cache(maxsize=512)
def _walk(symbol: str) -> np.ndarray:
    """Close of `symbol` on every calendar day from EPOCH (index 0) for HORIZON_DAYS days."""
    profile = profile_for(symbol)
    rng = np.random.Generator(np.random.PCG64(_seed(symbol)))
    dt = 1 / 365
    sigma = profile.annual_volatility * np.sqrt(dt)
    mu = (profile.annual_drift - profile.annual_volatility**2 / 2) * dt
    log_path = np.cumsum(mu + sigma * rng.standard_normal(HORIZON_DAYS))
    anchor = ANCHORS.get(symbol.split("-USD")[0]) or float(10 + rng.integers(0, 390))
    anchor_index = (ANCHOR_DATE - EPOCH).days
    return anchor * np.exp(log_path - log_path[anchor_index])


def _to_decimal(value: float) -> Decimal:
    return Decimal(f"{value:.4f}") if value < 10 else Decimal(f"{value:.2f}")


def simulated_close(symbol: str, on: date) -> Decimal:
    return _to_decimal(float(_walk(symbol)[(on - EPOCH).days]))


class SimulatedProvider(PriceProvider):
    name = "simulated"
    max_symbols_per_request = 500  # no wire: bounded only to keep one batch task short
    requests_per_second = 1000.0
    daily_quota = None

    def __init__(self, *, now: datetime | None = None) -> None:
        self._now = now  # frozen clock for tests; None = wall clock

    def now(self) -> datetime:
        return self._now or datetime.now(UTC)

    @staticmethod
    def _check_known(symbol: str) -> None:
        if symbol.upper().startswith("ZZ"):
            raise UnknownSymbolError(symbol, f"simulated provider has no symbol {symbol}")

    def latest_quotes(self, symbols: list[str]) -> QuoteBatch:
        batch = QuoteBatch()
        for symbol in symbols:
            try:
                self._check_known(symbol)
            except UnknownSymbolError:
                batch.unknown.add(symbol)
                continue
            batch.quotes[symbol] = self._quote(symbol)
        return batch

    def _quote(self, symbol: str) -> Quote:
        """The last close, or during an open session a price moving from it towards today's close."""
        now = self.now()
        profile = profile_for(symbol)
        calendar = calendar_get(profile.mic)
        today = now.date()
        if calendar is None:
            start_of_day = datetime(today.year, today.month, today.day, tzinfo=UTC)
            fraction = (now - start_of_day) / timedelta(days=1)
            previous = simulated_close(symbol, today - timedelta(days=1))
            return Quote(symbol=symbol, price=self._between(previous, simulated_close(symbol, today), fraction),
                         as_of=now, currency="USD", previous_close=previous)
        sessions = sessions_between(mic=profile.mic, start=today - timedelta(days=14), end=today)
        last, before = sessions[-1], sessions[-2]
        if last == today:
            open_at = calendar.session_open(today).to_pydatetime()
            close_at = calendar.session_close(today).to_pydatetime()
            if now < open_at:
                # Before the bell the latest price is the previous session's close.
                last, before = sessions[-2], sessions[-3]
            elif now < close_at:
                fraction = (now - open_at) / (close_at - open_at)
                previous = simulated_close(symbol, before)
                price = self._between(previous, simulated_close(symbol, today), fraction)
                return Quote(symbol=symbol, price=price, as_of=now, currency="USD", previous_close=previous)
        close_at = calendar.session_close(last).to_pydatetime()
        return Quote(symbol=symbol, price=simulated_close(symbol, last), as_of=close_at, currency="USD",
                     previous_close=simulated_close(symbol, before))

    @staticmethod
    def _between(previous: Decimal, close: Decimal, fraction: float) -> Decimal:
        return _to_decimal(float(previous) + (float(close) - float(previous)) * fraction)

    @staticmethod
    def _closed_today(symbol: str, now: datetime) -> bool:
        calendar = calendar_get(profile_for(symbol).mic)
        if calendar is None or not calendar.is_session(now.date()):
            return False
        return now >= calendar.session_close(now.date()).to_pydatetime()

    def daily_history(self, symbol: str, start: date, end: date) -> list[Bar]:
        self._check_known(symbol)
        now = self.now()
        # Today's close does not exist until the session is over.
        end = min(end, now.date() if self._closed_today(symbol, now) else now.date() - timedelta(days=1))
        start = max(start, EPOCH)
        walk = _walk(symbol)
        bars = []
        for day in sessions_between(mic=profile_for(symbol).mic, start=start, end=end):
            close = _to_decimal(float(walk[(day - EPOCH).days]))
            bars.append(Bar(date=day, close=close, adjusted_close=close))
        return bars

    # --- search and profiles, of its own universe

    def search(self, query: str) -> list[SearchHit]:
        """Its symbols by ticker prefix or name, the exact ticker first."""
        wanted = query.strip().lower()
        by_name = [symbol for symbol in UNIVERSE if wanted in NAMES.get(symbol, "").lower()]
        by_symbol = [symbol for symbol in UNIVERSE if symbol.lower().startswith(wanted)]
        found = sorted(set(by_name) | set(by_symbol), key=lambda symbol: (symbol.lower() != wanted, symbol))
        ticker = query.strip().upper()
        # It prices any ticker it does not list (AAP as well as AAPL), except the ZZ… ones; a query that named
        # something ("bitcoin") is a name, not a ticker.
        if not by_name and ticker not in found and SYMBOL_PATTERN.match(ticker) and not ticker.startswith("ZZ"):
            found.append(ticker)
        hits = []
        for symbol in found:
            asset_class = "crypto" if symbol in CRYPTO else "etf" if symbol in ETFS else "stock"
            # Its listings follow Yahoo's suffixes (SUFFIX_MIC); its coins are priced in USD.
            currency = suffix_currency(symbol, asset_class) if asset_class != "crypto" else "USD"
            hits.append(SearchHit(symbol=symbol, name=NAMES.get(symbol, ""), exchange="", currency=currency,
                                  asset_class=asset_class, provider=self.name))
        return hits

    def profile(self, symbol: str) -> ProfileFacts:
        self._check_known(symbol)
        sector, industry, country = COMPANY_PROFILES.get(symbol, ("", "", ""))
        return ProfileFacts(sector=sector, industry=industry, country=country,
                            sector_weights=FUND_SECTORS.get(symbol, {}), country_weights=FUND_COUNTRIES.get(symbol, {}))
