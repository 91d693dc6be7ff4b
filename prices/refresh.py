"""Refreshing stored prices: latest quotes for many instruments, and history backfills.

The PriceService talks to providers; this module decides what to ask for (unique active
instruments whose cached quote is no longer fresh; only missing history ranges) and stores what
comes back (idempotent upserts, quote cache, verification flags).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db.models import QuerySet
from django.utils import timezone

from prices.market_calendar import calendar_get, last_expected_close_date, sessions_between
from prices.models import Instrument, PriceHistory, Provider, VerificationStatus
from prices.plausibility import quotes_implausible_hold
from prices.providers.base import Quote, UnknownSymbolError
from prices.quote_cache import quotes_cache_get, quotes_cache_set
from prices.service import Batch, FetchResult, PriceService
from prices.services import PricePoint, instrument_facts_apply, instruments_verification_set, price_rows_upsert

logger = logging.getLogger(__name__)

# Providers Folio cannot ask: manual prices come from staff, nothing to fetch.
UNFETCHABLE = {Provider.MANUAL}


@dataclass
class RefreshSummary:
    instruments: int = 0
    skipped_fresh: int = 0
    batches: int = 0
    requests: int = 0
    stored: int = 0
    unknown: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


def refreshable_instruments(*, instrument_ids: Iterable[int] | None = None) -> QuerySet[Instrument]:
    """Active instruments a provider can price; unknown ones wait for a staff fix, not a retry."""
    queryset = (
        Instrument.objects.filter(active=True)
        .exclude(provider__in=UNFETCHABLE)
        .exclude(verification_status=VerificationStatus.UNKNOWN)
    )
    if instrument_ids is not None:
        queryset = queryset.filter(pk__in=list(instrument_ids))
    return queryset.order_by("symbol")


def quote_session_date(*, instrument: Instrument, quote: Quote) -> date:
    """The trading day a quote belongs to, on the exchange's own clock (UTC for 24/7 markets)."""
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


def prices_refresh(
    *,
    instruments: Iterable[Instrument] | None = None,
    force: bool = False,
    parallel: bool = True,
    service: PriceService | None = None,
    now: datetime | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_batch_done: Callable[[Batch, FetchResult], None] | None = None,
) -> RefreshSummary:
    """Fetch and store latest prices of the given (default: all refreshable) instruments.

    Instruments with a still-fresh cached quote are skipped unless `force`, so a run during closed
    markets makes no provider call at all. `on_plan(batch_count)` and `on_batch_done` report progress.
    """
    service = service or PriceService()
    now = now or timezone.now()
    candidates = list(refreshable_instruments() if instruments is None else instruments)
    fresh = set() if force else set(quotes_cache_get(symbols=[i.symbol for i in candidates]))
    todo = [instrument for instrument in candidates if instrument.symbol not in fresh]
    batches = service.plan_batches(todo)
    summary = RefreshSummary(instruments=len(candidates), skipped_fresh=len(fresh), batches=len(batches))
    if on_plan:
        on_plan(len(batches))

    def store(batch: Batch, result: FetchResult) -> None:
        summary.stored += fetch_result_store(instruments=batch.instruments, result=result, now=now)
        if on_batch_done:
            on_batch_done(batch, result)

    if parallel:
        total = service.fetch_batches_parallel(batches, on_batch_done=store)
    else:
        total = FetchResult()
        for batch in batches:
            batch_result = service.fetch_batch(batch)
            store(batch, batch_result)
            total.merge(batch_result)
    summary.requests = total.requests
    summary.unknown = sorted(total.unknown)
    summary.failures = total.failures
    return summary


def history_missing_sessions(*, instrument: Instrument, since: date, now: datetime) -> list[date]:
    """Expected sessions with no stored close, from `since` to the last close that should exist by now."""
    last_expected = last_expected_close_date(mic=instrument.exchange_mic, now=now)
    stored = set(PriceHistory.objects.filter(instrument=instrument, date__gte=since).values_list("date", flat=True))
    return [day for day in sessions_between(mic=instrument.exchange_mic, start=since, end=last_expected)
            if day not in stored]


def history_backfill(*, instrument: Instrument, since: date, service: PriceService | None = None,
                     now: datetime | None = None) -> int:
    """Fetch and store the closes of one instrument missing since `since`; returns rows written.

    One request spans every missing range (a provider charges per request, not per day); only the
    missing sessions are written, so what is stored is never overwritten. A first answer with closes
    verifies a new instrument (and its currency and type, where the provider states them, replace
    what the user typed); "no data" for one that never had a price flags it unknown.
    """
    if instrument.provider in UNFETCHABLE:
        return 0
    service = service or PriceService()
    now = now or timezone.now()
    missing = set(history_missing_sessions(instrument=instrument, since=since, now=now))
    if not missing:
        return 0
    gate = service.gate(instrument.provider)
    start, end = min(missing), max(missing)
    try:
        bars = gate.call(lambda: gate.provider.daily_history(instrument.quote_symbol, start, end), [0])
    except UnknownSymbolError:
        # Some providers say "no data" for a short range of a real symbol: only an instrument
        # that never had a price is flagged unknown on history alone.
        if not PriceHistory.objects.filter(instrument=instrument).exists():
            instruments_verification_set(instrument_ids=[instrument.pk], status=VerificationStatus.UNKNOWN)
        return 0
    instrument_facts_apply(
        instrument=instrument, currency=getattr(bars, "currency", None), asset_class=getattr(bars, "asset_class", None),
        first_verification=bool(bars) and instrument.verification_status != VerificationStatus.VERIFIED,
    )
    written = price_rows_upsert(rows=[
        (instrument.pk, PricePoint(bar.date, bar.close, bar.adjusted_close), instrument.provider)
        for bar in bars if bar.date in missing
    ])
    if bars:
        instruments_verification_set(instrument_ids=[instrument.pk], status=VerificationStatus.VERIFIED)
    return written
