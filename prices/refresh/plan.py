"""What a refresh asks for: unique active instruments a provider can price, minus those whose cached
quote is still fresh, cut into provider batches. Cost grows with unique instruments, never with holdings
or users; a still-fresh quote is not fetched again (no wasted quota)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import QuerySet

from prices.models import Instrument, Provider, VerificationStatus
from prices.providers.gateway import Batch, PriceService
from prices.quote_cache import quotes_cache_get

# Providers Folio cannot ask: manual prices come from staff, nothing to fetch.
UNFETCHABLE = {Provider.MANUAL}


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


@dataclass(frozen=True)
class RefreshPlan:
    candidates: list[Instrument]
    fresh: set[str]  # symbols skipped: their cached quote is still fresh
    todo: list[Instrument]
    batches: list[Batch]


def refresh_plan(*, instruments: Iterable[Instrument], force: bool, service: PriceService) -> RefreshPlan:
    """The batches that refresh `instruments`: all of them with `force`, else those without a fresh quote."""
    candidates = list(instruments)
    fresh = set() if force else set(quotes_cache_get(symbols=[i.symbol for i in candidates]))
    todo = [instrument for instrument in candidates if instrument.symbol not in fresh]
    return RefreshPlan(candidates=candidates, fresh=fresh, todo=todo, batches=service.plan_batches(todo))
