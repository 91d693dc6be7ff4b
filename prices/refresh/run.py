"""A refresh run here and now (`refresh_prices --sync`): the same plan and storing as a job's, fetched in this
process's threads instead of the workers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from prices.models import Instrument
from prices.providers.gateway import Batch, FetchResult, PriceService
from prices.refresh.plan import refresh_plan, refreshable_instruments
from prices.refresh.store import fetch_result_store


@dataclass
class RefreshSummary:
    instruments: int = 0
    skipped_fresh: int = 0
    batches: int = 0
    requests: int = 0
    stored: int = 0
    unknown: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)


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
    plan = refresh_plan(instruments=refreshable_instruments() if instruments is None else instruments, force=force,
                        service=service)
    batches = plan.batches
    summary = RefreshSummary(instruments=len(plan.candidates), skipped_fresh=len(plan.fresh), batches=len(batches))
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
