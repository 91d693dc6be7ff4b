"""History backfills: only the sessions missing, in one request per instrument."""

from __future__ import annotations

from datetime import date, datetime

from django.utils import timezone

from prices.market_calendar import last_expected_close_date, sessions_between
from prices.models import Instrument, PriceHistory, VerificationStatus
from prices.providers.base import UnknownSymbolError
from prices.providers.gateway import PriceService
from prices.refresh.plan import UNFETCHABLE
from prices.services import PricePoint, instrument_facts_apply, instruments_verification_set, price_rows_upsert


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
