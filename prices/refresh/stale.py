"""Stale prices: flagged on every read, refreshed in the background (stale-while-revalidate).

A thousand readers of the same stale price cause one refresh: each instrument is claimed with a
Redis SET NX before a task is queued, and the claim outlives the refresh attempt.

An instrument whose history backfill is pending (prices.history) gets no refresh: the backfill brings
its closes up to the last one that should exist, which is what "stale" asks for. Nor does one that a
backfill brought up to date since the reader looked: staleness is read again from the database after
the backfill claims are checked, so a backfill ending in between is seen either way. Otherwise a
new holding's first read would queue a quote that lands at some later moment and re-values a chart
just made from the backfilled history as current.
"""

import logging
from collections.abc import Iterable
from datetime import date, datetime

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from core.redis_store import claims_take, redis_key
from core.tasks import task_send
from prices.history import history_backfills_pending
from prices.market_calendar import price_is_stale
from prices.models import Instrument, PriceHistory

logger = logging.getLogger(__name__)

# One background refresh per instrument per window, however many readers see it stale.
REFRESH_CLAIM_SECONDS = 300


def _claim_key(instrument_id: int) -> str:
    return redis_key("stale-refresh", instrument_id)


def price_stale(*, mic: str, price_date: date | None, now: datetime) -> bool:
    """No price, or one older than the last close the exchange calendar says should exist."""
    if price_date is None:
        return True
    return price_is_stale(mic=mic, price_date=price_date, now=now, grace_minutes=settings.STALE_GRACE_MINUTES)


def stale_refresh_request(*, instrument_ids: Iterable[int]) -> list[int]:
    """Queue one background refresh of the stale instruments nobody claimed yet; returns those."""
    ids = sorted(set(instrument_ids))
    if not ids:
        return []
    try:
        ids = _still_stale(instrument_ids=set(ids) - history_backfills_pending(instrument_ids=ids))
        if not ids:
            return []
        claimed = claims_take(ids=ids, key=_claim_key, seconds=REFRESH_CLAIM_SECONDS)
        if claimed:
            # No scope lock: these few instruments must not wait behind a long scheduled run.
            task_send("prices.refresh_prices_job_task", kwargs={"instrument_ids": claimed, "force": True,
                                                                "lock_scope": None}, expires=REFRESH_CLAIM_SECONDS)
        return claimed
    except Exception:  # Redis or the broker down: the page still shows the stale price, flagged
        logger.warning("could not queue a refresh of stale prices", exc_info=True)
        return []


def _still_stale(*, instrument_ids: Iterable[int]) -> list[int]:
    """Those of `instrument_ids` stale by what the database holds now (one query: an index probe per
    instrument for its newest close)."""
    now = timezone.now()
    newest = PriceHistory.objects.filter(instrument=OuterRef("pk")).order_by("-date").values("date")[:1]
    rows = Instrument.objects.filter(pk__in=list(instrument_ids)).annotate(last=Subquery(newest))
    return sorted(pk for pk, mic, last in rows.values_list("pk", "exchange_mic", "last")
                  if price_stale(mic=mic, price_date=last, now=now))
