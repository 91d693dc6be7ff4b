"""Writes to instruments and price history."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from prices.currencies import currency_normalize
from prices.models import AssetClass, Instrument, PriceHistory, Provider, VerificationStatus, cash_symbol
from prices.providers.base import SYMBOL_PATTERN
from prices.search_cache import search_name_get, symbol_unknown_check
from prices.series import price_series_lock
from prices.signals import prices_changed

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class PricePoint:
    date: date
    close: Decimal
    adjusted_close: Decimal | None = None


def symbol_normalize(*, symbol: str) -> str:
    """The canonical form of a user-typed symbol, or a ValidationError naming `symbol`."""
    normalized = (symbol or "").strip().upper()
    if not SYMBOL_PATTERN.match(normalized):
        raise ValidationError(
            {"symbol": "Enter a ticker of 1-32 letters, digits or . - = ^ : _ / (e.g. AAPL, BRK-B)."}
        )
    return normalized


def default_provider_for(*, asset_class: str) -> str:
    if asset_class == AssetClass.CRYPTO:
        return settings.CRYPTO_PRICE_PROVIDER
    if asset_class == AssetClass.CASH:
        return Provider.MANUAL
    return settings.PRICE_PROVIDER


# CoinGecko prices ids, not tickers: the common coins, so `BTC` (or `bitcoin`) just works. Others: type
# the coin's CoinGecko id with provider coingecko, or set the instrument's provider symbol in the admin.
COINGECKO_IDS = {
    "BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "ADA": "cardano", "XRP": "ripple",
    "DOGE": "dogecoin", "DOT": "polkadot", "LTC": "litecoin", "AVAX": "avalanche-2", "LINK": "chainlink",
    "BNB": "binancecoin", "MATIC": "matic-network", "USDT": "tether", "USDC": "usd-coin", "TRX": "tron",
    "XLM": "stellar", "ATOM": "cosmos", "BCH": "bitcoin-cash", "UNI": "uniswap", "SHIB": "shiba-inu",
}
COINGECKO_TICKERS = {coin_id: ticker for ticker, coin_id in COINGECKO_IDS.items()}
# What CoinGecko's prices are quoted in (prices/providers/coingecko.py asks for USD).
COINGECKO_CURRENCY = "USD"


def crypto_ticker(symbol: str) -> str | None:
    """The ticker of a coin Folio knows by its ticker (BTC, BTC-USD) or CoinGecko id (bitcoin), else None."""
    raw = (symbol or "").strip()
    if raw.lower() in COINGECKO_TICKERS:
        return COINGECKO_TICKERS[raw.lower()]
    ticker = raw.upper().split("-")[0]
    return ticker if ticker in COINGECKO_IDS and raw.upper() in (ticker, f"{ticker}-USD") else None


def provider_symbol_default(*, symbol: str, provider: str, asset_class: str = "") -> str:
    """The provider's own name for a ticker where it differs by a known rule ('' = the ticker)."""
    if provider == Provider.COINGECKO:
        return COINGECKO_IDS.get(symbol.split("-")[0], symbol.lower())  # CoinGecko ids are lower-case
    if provider == Provider.STOOQ and "." not in symbol:
        return f"{symbol.lower()}.us"  # Stooq names US listings aapl.us
    if asset_class == AssetClass.CRYPTO and provider == Provider.YAHOO and "-" not in symbol:
        return f"{symbol}-USD"  # Yahoo names coins BTC-USD
    if asset_class == AssetClass.CRYPTO and provider == Provider.TWELVEDATA and "/" not in symbol:
        return f"{symbol}/USD"  # Twelve Data names coins BTC/USD
    return ""


def manual_is_requested(*, provider: str | None, asset_class: str | None) -> bool:
    """The user asks for a hand-priced instrument: provider `manual`, or cash (which is manual)."""
    return provider == Provider.MANUAL or (not provider and asset_class == AssetClass.CASH)


def cash_instruments_get_or_create(*, currencies: Iterable[str]) -> dict[str, Instrument]:
    """Each currency's cash instrument (ISO codes, major units): shared, manual (no provider prices it: it
    is worth 1 in its currency, portfolio/cash.py), created the first time a portfolio holds that cash."""
    wanted = {cash_symbol(code): code for code in currencies}
    found = {i.currency: i for i in Instrument.objects.filter(symbol__in=wanted, owner__isnull=True)}
    for symbol, code in wanted.items():
        if code not in found:
            found[code], _ = Instrument.objects.get_or_create(
                symbol=symbol, owner=None,
                defaults={"name": f"Cash ({code})", "asset_class": AssetClass.CASH, "currency": code,
                          "provider": Provider.MANUAL, "verification_status": VerificationStatus.VERIFIED})
    return found


def _coin_recognised(*, symbol: str, provider: str | None, asset_class: str | None) -> tuple[str, str | None]:
    """(symbol, asset class) of a request, a coin typed by its ticker pair or CoinGecko id without a provider (or
    with the crypto one's) made its ticker, and crypto."""
    manual = manual_is_requested(provider=provider, asset_class=asset_class)
    ticker = crypto_ticker(symbol) if not manual and asset_class in (None, "", AssetClass.CRYPTO) else None
    if ticker and provider in (None, "", Provider.COINGECKO, settings.CRYPTO_PRICE_PROVIDER):
        return ticker, AssetClass.CRYPTO
    return symbol, asset_class


def instrument_symbol_of(*, symbol: str, provider: str | None, asset_class: str | None) -> str:
    """The symbol instrument_get_or_create finds or makes the instrument of a request by: BTC-USD and bitcoin are
    BTC (what a file's rows are compared with the stored transactions' instruments by)."""
    return symbol_normalize(symbol=_coin_recognised(symbol=symbol, provider=provider, asset_class=asset_class)[0])


def instrument_get_or_create(
    *,
    symbol: str,
    currency: str,
    provider: str | None = None,
    asset_class: str | None = None,
    name: str = "",
    owner: AbstractBaseUser | None = None,
) -> Instrument:
    """The instrument for `symbol` in `owner`'s context, created when it is new.

    With an owner (every transaction, import and benchmark), a manual request (provider `manual`, or
    cash) is the owner's own manual instrument; any other request is the owner's manual instrument of
    that symbol if they have one, else the shared instrument. Another user's manual instrument is never
    found, and what one user types never changes the shared one: an existing shared instrument keeps
    its provider and class, and a new one is created named as its provider's search named it (else by its
    symbol: a typed `name` is kept for the owner's own manual instrument only), pending verification, its
    currency and class provisional until the provider's first answer states them (prices/refresh/store.py).
    Without an owner
    (commands, staff tools) only shared instruments are found or made. A coin typed by its ticker or
    CoinGecko id without a provider is recognised as crypto and priced by the crypto provider.
    """
    manual = manual_is_requested(provider=provider, asset_class=asset_class)
    symbol, asset_class = _coin_recognised(symbol=symbol, provider=provider, asset_class=asset_class)
    coin_id = (symbol or "").strip().lower()
    symbol = symbol_normalize(symbol=symbol)
    owned = owner is not None and (manual or not provider)
    if owned:
        existing = Instrument.objects.filter(symbol=symbol, owner=owner).first()
        if existing is not None or manual:
            return existing or _instrument_create(
                symbol=symbol, owner=owner, name=name, asset_class=asset_class or AssetClass.STOCK,
                currency=currency, provider=Provider.MANUAL, provider_symbol="")
    existing = Instrument.objects.filter(symbol=symbol, owner__isnull=True).first()
    wanted_class = asset_class or AssetClass.STOCK
    wanted_provider = provider or default_provider_for(asset_class=wanted_class)
    if existing is not None:
        return _instrument_reroute(existing, provider=wanted_provider, asset_class=wanted_class)
    asset_class, provider = wanted_class, wanted_provider
    provider_symbol = provider_symbol_default(symbol=symbol, provider=provider, asset_class=asset_class)
    if provider == Provider.COINGECKO:
        # A coin typed by a CoinGecko id Folio does not list is asked for by that id, as typed.
        provider_symbol = COINGECKO_IDS.get(symbol, coin_id)
        currency = COINGECKO_CURRENCY
    # A new symbol its provider's search has already answered without: refused now, not flagged later.
    symbol_unknown_check(symbol=symbol, provider=provider, provider_symbol=provider_symbol)
    # Every user sees a shared instrument's name: the provider's (its search's), never what one user typed.
    name = search_name_get(provider=provider, symbol=symbol, provider_symbol=provider_symbol) or ""
    return _instrument_create(symbol=symbol, owner=None, name=name,
                              asset_class=asset_class, currency=currency, provider=provider,
                              provider_symbol=provider_symbol)


def _instrument_reroute(instrument: Instrument, *, provider: str, asset_class: str) -> Instrument:
    """An instrument its provider does not know, and that never had a price, helps nobody where it is: a
    request for another provider or class takes it there, pending verification again — so whoever first
    typed a symbol cannot leave it unpriced for everyone. Any other instrument is returned as it is."""
    if (instrument.verification_status != VerificationStatus.UNKNOWN
            or (instrument.provider, instrument.asset_class) == (provider, asset_class)
            or instrument.prices.exists()):
        return instrument
    instrument.provider, instrument.asset_class = provider, asset_class
    instrument.provider_symbol = provider_symbol_default(symbol=instrument.symbol, provider=provider,
                                                         asset_class=asset_class)
    instrument.exchange_mic = "" if asset_class == AssetClass.CRYPTO else "XNYS"
    instrument.verification_status = VerificationStatus.PENDING
    instrument.save(update_fields=["provider", "asset_class", "provider_symbol", "exchange_mic", "verification_status"])
    return instrument


def _instrument_create(*, symbol: str, owner: AbstractBaseUser | None, name: str, asset_class: str,
                       currency: str, provider: str, provider_symbol: str) -> Instrument:
    """Get or create on the natural key (symbol, owner): two first trades at once make one instrument."""
    instrument, _ = Instrument.objects.get_or_create(
        symbol=symbol,
        owner=owner,
        defaults={
            "name": name or symbol,
            "asset_class": asset_class,
            "currency": currency,
            "provider": provider,
            "provider_symbol": provider_symbol,
            # Crypto trades around the clock on no exchange calendar.
            "exchange_mic": "" if asset_class == AssetClass.CRYPTO else "XNYS",
        },
    )
    return instrument


def prices_upsert(*, instrument: Instrument, points: Iterable[PricePoint], source: str) -> int:
    """Insert or update one instrument's daily closes; returns how many rows were written."""
    return price_rows_upsert(rows=[(instrument.pk, point, source) for point in points])


# The columns keep a close to 6 decimal places: a close below half a millionth would be stored as 0.
MIN_CLOSE = Decimal("0.0000005")


def close_fits_column(value: object) -> bool:
    """A close the numeric(20,6) columns can hold: a finite number from half a millionth (below, it would be
    stored as 0, and a holding is never valued at 0) up to below MAX_CLOSE."""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        return number.is_finite() and MIN_CLOSE <= number < MAX_CLOSE
    except (ArithmeticError, ValueError, TypeError):
        return False


def price_rows_upsert(*, rows: Iterable[tuple[int, PricePoint, str]]) -> int:
    """Insert or update daily closes of any instruments in one statement per 2,000 rows.

    Rows are (instrument id, point, source). Idempotent on (instrument, date). Points whose close (or
    adjusted close) the column cannot hold — none, 0 or less, NaN, 1e14 or more — are dropped and logged,
    so an empty or garbage response never overwrites good history, and one absurd value never fails the
    statement that carries every other row (a numeric overflow would). Announces `prices_changed` inside
    the write's transaction, for the rows that changed (_changed_keys).
    """
    objects = {}
    for instrument_id, point, source in rows:
        if point.close is None or not close_fits_column(point.close) or (
                point.adjusted_close is not None and not close_fits_column(point.adjusted_close)):
            if point.close is not None:
                logger.warning("price of instrument #%s on %s not stored: %s / %s outside the column", instrument_id,
                               point.date, point.close, point.adjusted_close)
            continue
        objects[(instrument_id, point.date)] = PriceHistory(
            instrument_id=instrument_id,
            date=point.date,
            close=point.close,
            adjusted_close=point.adjusted_close,
            source=source,
        )
    if not objects:
        return 0
    with transaction.atomic():
        price_series_lock(instrument_ids=[pk for pk, _ in objects])
        changed = _changed_keys(objects)
        # A quote carries no adjusted close: it must not erase the one a history backfill stored.
        for with_adjusted in (True, False):
            batch = [row for row in objects.values() if (row.adjusted_close is not None) is with_adjusted]
            if batch:
                PriceHistory.objects.bulk_create(
                    batch,
                    update_conflicts=True,
                    unique_fields=["instrument", "date"],
                    update_fields=["close", *(["adjusted_close"] if with_adjusted else []), "source",
                                   "last_updated"],
                    batch_size=2000,
                )
        if changed:
            prices_changed.send(sender=PriceHistory, instrument_ids=sorted({pk for pk, _ in changed}),
                                since=min(day for _, day in changed))
    return len(objects)


# A refresh's rows dated before today are a handful per instrument (the last session's close, re-sent
# before the market opens and all weekend); a backfill's are thousands, new or not, and count as changed.
CHANGE_CHECK_ROWS_MAX = 5000


def _changed_keys(objects: dict[tuple[int, date], PriceHistory]) -> list[tuple[int, date]]:
    """The (instrument, day) rows whose close differs from the stored one (or is new).

    A close re-sent as it was changes nothing: announcing it would outdate every chart's history (a past
    day) on every refresh before the market opens. The adjusted close is not compared: nothing that is
    cached or drawn reads it, and a quote re-sending a backfilled day carries none. Rows of today are
    always announced (they move the dashboard's totals, and only today's point)."""
    today = timezone.localdate()
    past = [key for key in objects if key[1] < today]
    if not past or len(past) > CHANGE_CHECK_ROWS_MAX:
        return list(objects)
    stored = {
        (pk, day): close
        for pk, day, close in PriceHistory.objects.filter(
            instrument_id__in={pk for pk, _ in past}, date__in={day for _, day in past}, date__lt=today,
        ).values_list("instrument_id", "date", "close")
    }
    return [key for key, row in objects.items() if key[1] >= today or stored.get(key) != row.close]


def instruments_verification_set(*, instrument_ids: Iterable[int], status: str) -> int:
    """Flag instruments verified or unknown to their provider (unknown ones are never priced at 0)."""
    ids = list(instrument_ids)
    if not ids:
        return 0
    return Instrument.objects.filter(pk__in=ids).exclude(verification_status=status).update(verification_status=status)


def instrument_facts_apply(*, instrument: Instrument, currency: str | None, asset_class: str | None,
                           first_verification: bool) -> bool:
    """Take what the instrument's provider says it is; True when the instrument changed.

    The user's currency and class were provisional. The currency is taken whenever the provider states
    another one: its closes are in that currency, so any other on the instrument would misvalue every
    holding. The class is taken when the answer first verifies the instrument (later, it is staff's to
    change in the admin). A change is announced with `prices_changed`, as values depend on it.
    """
    if instrument.owner_id is not None or instrument.provider == Provider.MANUAL:
        return False  # nobody but its owner speaks for a manual instrument
    changes: dict[str, str] = {}
    if currency:
        try:
            code = currency_normalize(code=currency, allow_minor=True)
        except ValidationError:
            code = None  # not a currency Folio knows: keep the one we have
        if code and code != instrument.currency:
            changes["currency"] = code
    if first_verification and asset_class in AssetClass.values and asset_class != instrument.asset_class:
        changes["asset_class"] = asset_class
        if asset_class == AssetClass.CRYPTO:
            changes["exchange_mic"] = ""  # around the clock, on no exchange's calendar
        elif instrument.asset_class == AssetClass.CRYPTO and not instrument.exchange_mic:
            changes["exchange_mic"] = "XNYS"  # the calendar a new stock gets (see instrument_get_or_create)
    if not changes:
        return False
    with transaction.atomic():
        Instrument.objects.filter(pk=instrument.pk).update(**changes)
        prices_changed.send(sender=Instrument, instrument_ids=[instrument.pk], since=None)
    for name, value in changes.items():
        setattr(instrument, name, value)
    return True


# Staff-entered prices must look like prices: positive, dated 1900 to today, within the column.
MAX_CLOSE = Decimal("1e14")
EARLIEST_PRICE_DATE = date(1900, 1, 1)


def manual_prices_add(*, instrument: Instrument, points: list[PricePoint], row_offset: int = 0) -> int:
    """Store staff-entered closes of a `manual` instrument: all rows or none.

    Errors name the row (counting from `row_offset`) and the field: {"row 3": ["close: Must be …"]}.
    """
    if instrument.provider != Provider.MANUAL:
        raise ValidationError(
            {"symbol": f"{instrument.symbol} is priced by {instrument.provider}; only manual instruments take prices."}
        )
    today = date.today()
    errors: dict[str, list[str]] = {}
    for index, point in enumerate(points, start=row_offset):
        row: list[str] = []
        if point.date > today:
            row.append("date: Must not be in the future.")
        elif point.date < EARLIEST_PRICE_DATE:
            row.append(f"date: Must not be before {EARLIEST_PRICE_DATE.isoformat()}.")
        if point.close is None or point.close <= 0:
            row.append("close: Must be greater than zero.")
        elif point.close >= MAX_CLOSE:
            row.append("close: Too large to be a price.")
        if row:
            errors[f"row {index}"] = row
    if errors:
        raise ValidationError(errors)
    return prices_upsert(instrument=instrument, points=points, source=Provider.MANUAL)
