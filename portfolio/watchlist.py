"""The watchlist: instruments a user follows without holding them, with their latest price and day change.

A watched instrument is needed like a held one: prices is told so (registered in apps.py), so the
scheduled backfills keep a year of its closes, the refresh jobs price it (every active instrument, and
a user's own refresh takes their watched ones too: selectors.instrument_ids_of_user), and its holders'
rules apply to reading its prices (its watchers may, selectors.instrument_readable_by).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Min
from django.utils import timezone

from portfolio.holdings import percent_format
from portfolio.models import WatchlistItem
from prices.currencies import currency_normalize
from prices.history import history_backfill_request
from prices.quote_cache import quotes_cache_get
from prices.refresh.stale import price_stale
from prices.selectors import prices_latest_get
from prices.services import instrument_get_or_create

# A followed instrument's chart looks this far back.
WATCH_HISTORY_DAYS = 365
# Enough for anyone's list; a bound so the page and its queries stay small.
MAX_WATCHED = 200


def watchlist_add(*, user: AbstractBaseUser, symbol: str, provider: str | None = None,
                  asset_class: str | None = None, currency: str = "USD", name: str = "") -> tuple[WatchlistItem, bool]:
    """Follow the instrument `symbol` names for the user (their own manual one, else the shared one,
    created pending verification if new — refused if its provider's search said it does not exist).
    Returns the item and whether it is new; following twice is not an error."""
    currency = currency_normalize(code=currency or "USD", field="currency", allow_minor=True)
    with transaction.atomic():
        instrument = instrument_get_or_create(symbol=symbol, currency=currency,
                                              provider=provider, asset_class=asset_class, name=name, owner=user)
        existing = WatchlistItem.objects.filter(user=user, instrument=instrument).first()
        if existing is not None:
            return existing, False
        if WatchlistItem.objects.filter(user=user).count() >= MAX_WATCHED:
            raise ValidationError({"symbol": f"A watchlist holds at most {MAX_WATCHED} instruments."})
        try:
            with transaction.atomic():
                item = WatchlistItem.objects.create(user=user, instrument=instrument)
        except IntegrityError:  # the same add, concurrently: one item
            return WatchlistItem.objects.get(user=user, instrument=instrument), False
        since = timezone.localdate() - timedelta(days=WATCH_HISTORY_DAYS)
        transaction.on_commit(lambda: history_backfill_request(needs={instrument.pk: since}))
    return item, True


def watchlist_remove(*, user: AbstractBaseUser, item_id: int) -> bool:
    """Stop following; False when the user has no such item (someone else's answers the same)."""
    deleted, _ = WatchlistItem.objects.filter(user=user, pk=item_id).delete()
    return bool(deleted)


def watchlist_get(*, user: AbstractBaseUser, item_ids: Iterable[int] | None = None) -> list[dict]:
    """The user's watched instruments (or those of `item_ids` among them) with their latest price — a fresh
    quote when the refresh has one, else the latest stored close — and the change since the previous close.
    Constant queries."""
    items = WatchlistItem.objects.filter(user=user).select_related("instrument")
    if item_ids is not None:
        items = items.filter(pk__in=list(item_ids))
    items = list(items)
    instruments = [item.instrument for item in items]
    closes = prices_latest_get(instrument_ids=[i.pk for i in instruments])
    quotes = quotes_cache_get(symbols=[i.symbol for i in instruments if i.owner_id is None])
    now = timezone.now()
    rows = []
    for item in items:
        instrument = item.instrument
        # A quote is cached by symbol, and only providers quote: it is the shared instrument's, never the
        # user's own manual one of the same symbol (both may be followed)
        close = closes.get(instrument.pk)
        quote = quotes.get(instrument.symbol) if instrument.owner_id is None else None
        if quote is not None and (close is None or quote["as_of"][:10] >= close.date.isoformat()):
            price, previous = quote["price"], quote["previous_close"]
            as_of = date.fromisoformat(quote["as_of"][:10])
            if previous is None and close is not None:
                # A quote without one (CoinGecko's, Stooq's): the stored close before the quote's day, as the
                # dashboard's day change is made
                previous = close.previous_close if close.date == as_of else close.close
        elif close is not None:
            price, previous, as_of = close.close, close.previous_close, close.date
        else:
            price = previous = as_of = None
        change = price - previous if price is not None and previous else None
        rows.append({
            "id": item.pk, "instrument_id": instrument.pk, "symbol": instrument.symbol, "name": instrument.name,
            "currency": instrument.currency,
            "asset_class": instrument.asset_class, "provider": instrument.provider,
            "verification_status": instrument.verification_status,
            "price": None if price is None else str(price), "price_as_of": as_of,
            "previous_close": None if previous is None else str(previous),
            "day_change": None if change is None else str(change),
            "day_change_percent": percent_format(change, previous),
            "stale": price_stale(mic=instrument.exchange_mic, price_date=as_of, now=now),
            "added_at": item.added_at,
        })
    return rows


def watchlist_history_needs(instrument_ids: Iterable[int] | None = None) -> dict[int, date]:
    """Instrument id -> the date its watchers need closes from (a year before it was first followed)."""
    items = WatchlistItem.objects.all()
    if instrument_ids is not None:
        items = items.filter(instrument_id__in=list(instrument_ids))
    first = items.values("instrument_id").annotate(first=Min("added_at")).values_list("instrument_id", "first")
    return {pk: timezone.localdate(added) - timedelta(days=WATCH_HISTORY_DAYS) for pk, added in first}


def watchlist_fx_needs() -> dict[str, dict[str, date]]:
    """A watchlist shows prices in their own currency: it needs no FX rates."""
    return {}
