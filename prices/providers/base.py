"""The one interface every market-data provider implements, and its error taxonomy.

Clients speak provider symbols (`Instrument.quote_symbol`) and return Decimals, never floats.
What to do about a failure is decided by its class:

- TransientError: retry with backoff (5xx, timeouts, connection errors, garbage bodies).
- RateLimitedError: wait `retry_after` seconds (or for the rate-limit bucket), then retry.
- QuotaExhaustedError: the daily budget is spent; stop until the quota resets.
- PermanentError: retrying cannot help (bad key, premium-only endpoint, 4xx validation).
- UnknownSymbolError: the provider does not know the symbol; flag the instrument, never price it 0.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal

# Tickers as brokers and providers write them: BRK-B, BRK.B, ^GSPC, EURUSD=X, VOD.L, BTC-USD. What a typed
# symbol must look like, and what the simulated provider would price.
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9^][A-Z0-9.\-=^:_/]{0,31}$")
# Results asked of a provider per search query: a dropdown's worth (Twelve Data allows up to 120).
SEARCH_RESULTS = 10


class ProviderError(Exception):
    """Base of every provider failure."""


class TransientError(ProviderError):
    """Worth retrying after a backoff."""


class RateLimitedError(TransientError):
    def __init__(self, message: str = "rate limited", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExhaustedError(ProviderError):
    """The provider's daily budget is used up: no retry before it resets."""


class PermanentError(ProviderError):
    """Never retried."""


class UnknownSymbolError(PermanentError):
    def __init__(self, symbol: str, message: str = "") -> None:
        super().__init__(message or f"unknown symbol {symbol}")
        self.symbol = symbol


@dataclass(frozen=True)
class Quote:
    symbol: str  # the provider symbol it was asked for
    price: Decimal
    as_of: datetime  # timezone-aware, UTC
    currency: str | None = None  # what the price is in, as the provider states it (GBp for pence)
    previous_close: Decimal | None = None
    # What the provider says the instrument is, in Folio's words (prices.models.AssetClass values:
    # stock, etf, fund, crypto, other); None when it does not say or says something Folio cannot map.
    asset_class: str | None = None
    # The trading day, when the provider states only the day (no time): on the exchange's clock already, where
    # a time made of it in UTC could fall on the next local day east of UTC.
    session_date: date | None = None


@dataclass(frozen=True)
class Bar:
    date: date
    close: Decimal
    adjusted_close: Decimal | None = None


class History(list):
    """A `daily_history` answer: its Bars, oldest first (it is a list of them), and what the provider
    said about the instrument alongside — its `currency` and `asset_class` as in Quote, None when
    unsaid. A client that learns nothing of the kind may return a plain list."""

    def __init__(self, bars: Iterable[Bar] = (), *, currency: str | None = None,
                 asset_class: str | None = None) -> None:
        super().__init__(bars)
        self.currency = currency
        self.asset_class = asset_class


@dataclass
class QuoteBatch:
    """The answer to one batched quote request: prices for the symbols the provider knew, and the
    symbols it said it does not know (never a price of 0 for those)."""

    quotes: dict[str, Quote] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)


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


@dataclass(frozen=True)
class ProfileFacts:
    """What a provider says an instrument is: its sector, industry and country, and a fund's breakdown."""

    sector: str = ""
    industry: str = ""
    country: str = ""
    sector_weights: dict[str, str] = field(default_factory=dict)  # fractions as decimal strings
    country_weights: dict[str, str] = field(default_factory=dict)


class PriceProvider(ABC):
    name: str
    # Batch size by default (the free tier's; `<NAME>_BATCH_SIZE` overrides it for a paid plan).
    max_symbols_per_request: int = 1
    # The most symbols the provider takes in one request on any plan (URL length, its documented cap):
    # the ceiling of `<NAME>_BATCH_SIZE`, checked at start. None: the default above is the ceiling.
    max_batch_size: int | None = None
    # Sustained request rate the provider tolerates, shared by every worker.
    requests_per_second: float = 1.0
    # Requests allowed per UTC day, or None when the provider has no daily cap.
    daily_quota: int | None = None
    # True when the provider charges every symbol of a batch (Twelve Data's credits): the rate and
    # the quota above then count symbols, not requests.
    credits_per_symbol: bool = False

    @classmethod
    def batch_size_ceiling(cls) -> int:
        return cls.max_batch_size or cls.max_symbols_per_request

    @abstractmethod
    def latest_quotes(self, symbols: list[str]) -> QuoteBatch:
        """Latest prices for at most `max_symbols_per_request` symbols, in one request."""

    @abstractmethod
    def daily_history(self, symbol: str, start: date, end: date) -> list[Bar]:
        """Daily closes from `start` to `end` inclusive, oldest first (a History where the provider also
        states the instrument's currency or type). Raises UnknownSymbolError."""

    # --- optional endpoints: a client overrides the methods its provider has

    def search(self, query: str) -> list[SearchHit]:
        """Instruments matching `query` (a ticker, a name or part of one), in the provider's order; one
        request. An empty list is a well-formed "nothing found": an unexpected body raises, like any call."""
        raise PermanentError(f"{self.name}: no search endpoint")

    def profile(self, symbol: str) -> ProfileFacts | None:
        """What the provider says `symbol` (its own symbol) is, in one request; None when it has no
        profiles at all (nothing to ask). Raises UnknownSymbolError."""
        return None

    @classmethod
    def supports_search(cls) -> bool:
        # From the override itself, so a client cannot claim an endpoint it does not implement.
        return cls.search is not PriceProvider.search

    @classmethod
    def supports_profile(cls) -> bool:
        return cls.profile is not PriceProvider.profile
