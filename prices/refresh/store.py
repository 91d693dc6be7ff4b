"""Storing what a fetch brought: the day's close (updated until the session ends), the quote cache and
verification flags. Failed symbols keep their stored prices untouched."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from prices.market_calendar import calendar_get
from prices.models import Instrument, VerificationStatus
from prices.plausibility import quotes_implausible_hold
from prices.providers.base import Quote
from prices.providers.gateway import FetchResult
from prices.quote_cache import quotes_cache_set
from prices.services import PricePoint, instrument_facts_apply, instruments_verification_set, price_rows_upsert


def quote_session_date(*, instrument: Instrument, quote: Quote) -> date:
    """The trading day a quote belongs to, on the exchange's own clock (UTC for 24/7 markets)."""
    if quote.session_date is not None:
        return quote.session_date
    calendar = calendar_get(instrument.exchange_mic)
    as_of = quote.as_of if quote.as_of.tzinfo else quote.as_of.replace(tzinfo=UTC)
    return as_of.astimezone(calendar.tz if calendar else UTC).date()


def fetch_result_store(*, instruments: Iterable[Instrument], result: FetchResult, now: datetime) -> int:
    """Store a fetch's quotes as the day's close (updated until the session ends), cache them,
    and flag verified/unknown instruments. Failed symbols keep their stored prices untouched.
    A quote's currency (and, when it first verifies the instrument, its type) replaces what the
    user typed, before its price is stored."""
    by_symbol = {instrument.symbol: instrument for instrument in instruments}
    quotes_implausible_hold(instruments=by_symbol.values(), result=result)  # absurd values: that symbol's failure
    quoted = {by_symbol[s]: q for s, q in result.quotes.items() if s in by_symbol and q.price > 0}
    for instrument, quote in quoted.items():
        instrument_facts_apply(instrument=instrument, currency=quote.currency, asset_class=quote.asset_class,
                               first_verification=instrument.verification_status != VerificationStatus.VERIFIED)
    stored = price_rows_upsert(rows=[
        (instrument.pk, PricePoint(date=quote_session_date(instrument=instrument, quote=quote), close=quote.price),
         instrument.provider)
        for instrument, quote in quoted.items()
    ])
    quotes_cache_set(quotes=quoted, now=now)
    instruments_verification_set(instrument_ids=[i.pk for i in quoted], status=VerificationStatus.VERIFIED)
    # Only an instrument still pending verification is flagged unknown on one answer: a verified one
    # missing from an answer is a provider's glitch (an empty result reads as "all unknown"), not a
    # delisting — it stays refreshed and counts as failed this time.
    instruments_verification_set(
        instrument_ids=[by_symbol[s].pk for s in result.unknown
                        if s in by_symbol and by_symbol[s].verification_status == VerificationStatus.PENDING],
        status=VerificationStatus.UNKNOWN,
    )
    return stored
