"""Celery tasks of the prices app: thin, idempotent, JSON arguments only (ids and plain data)."""

from datetime import date

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import close_old_connections

from core.outages import DATABASE_DOWN
from core.ticks import task_tick_claim
from prices.fx import fx_refresh
from prices.history import fx_backfill_run, history_backfill_request, history_backfill_run
from prices.needs import instrument_needs_get
from prices.profiles import instrument_profiles_refresh
from prices.refresh.jobs import prices_refresh_batch_fail, prices_refresh_batch_run, prices_refresh_job_start
from prices.search import provider_search_run


@shared_task(name="prices.refresh_prices_job_task", bind=True)
def refresh_prices_job_task(self, instrument_ids: list[int] | None = None, force: bool = False,
                            owner_id: int | None = None, lock_scope: str | None = "all",
                            tick: str | None = None) -> str | None:
    """Plan a refresh and fan out its batches (beat runs it every few minutes, once per tick)."""
    if not task_tick_claim(self, tick):
        return None
    return prices_refresh_job_start(instrument_ids=instrument_ids, force=force, owner_id=owner_id,
                                    lock_scope=lock_scope).job_id


# Redelivered if the worker dies mid-batch (acks_late + reject_on_worker_lost): a batch already counted
# is not fetched again, the upserts are idempotent and the job counts each batch once. Redis and database
# outages are waited out inside the batch (bounded, prices/refresh/jobs.py); a batch whose database stays down, or
# that reaches its time limit, is counted failed, so its job still ends by itself.
@shared_task(name="prices.refresh_batch_task", acks_late=True, reject_on_worker_lost=True)
def refresh_batch_task(job_id: str, batch_id: str, provider: str, instrument_ids: list[int]) -> None:
    try:
        prices_refresh_batch_run(job_id=job_id, batch_id=batch_id, provider=provider, instrument_ids=instrument_ids)
    except SoftTimeLimitExceeded:
        prices_refresh_batch_fail(job_id=job_id, batch_id=batch_id, instrument_ids=instrument_ids,
                                  reason="time limit reached")
    except DATABASE_DOWN as error:
        close_old_connections()
        prices_refresh_batch_fail(job_id=job_id, batch_id=batch_id, instrument_ids=instrument_ids,
                                  reason=f"database unavailable: {type(error).__name__}")


@shared_task(name="prices.backfill_history_task", acks_late=True, reject_on_worker_lost=True)
def backfill_history_task(instrument_id: int, since: str | None = None, claim: str | None = None) -> int:
    """The closes an instrument misses since `since` (default: since anyone needs it)."""
    return history_backfill_run(instrument_id=instrument_id, since=date.fromisoformat(since) if since else None,
                                claim=claim)


@shared_task(name="prices.backfill_all_history_task", bind=True)
def backfill_all_history_task(self, tick: str | None = None) -> int | None:
    """The safety net: a backfill per needed instrument, each asking only for the sessions it misses
    (usually none; after each exchange's close, that day's bar)."""
    if not task_tick_claim(self, tick):
        return None
    return len(history_backfill_request(needs=instrument_needs_get(), only_short=False))


@shared_task(name="prices.fx_backfill_task", acks_late=True, reject_on_worker_lost=True)
def fx_backfill_task(base: str, since: str, claims: dict[str, str]) -> int:
    return fx_backfill_run(base=base, since=date.fromisoformat(since), claims=claims)


@shared_task(name="prices.fx_refresh_task", bind=True, acks_late=True)
def fx_refresh_task(self, tick: str | None = None) -> int | None:
    if not task_tick_claim(self, tick):
        return None
    return fx_refresh()


# Not acks_late: a search lost with its worker is claimed again by the next asker once its claim expires.
@shared_task(name="prices.instrument_search_task")
def instrument_search_task(provider: str, query: str) -> int:
    """One provider's search for one query, its answer cached for everyone for a day."""
    return provider_search_run(provider=provider, query=query)


@shared_task(name="prices.instrument_profiles_refresh_task", bind=True)
def instrument_profiles_refresh_task(self, instrument_ids: list[int] | None = None,
                                     tick: str | None = None) -> dict[str, int] | None:
    """Sector and country of the given instruments (None: every needed one that is due)."""
    if not task_tick_claim(self, tick):
        return None
    return instrument_profiles_refresh(instrument_ids=instrument_ids)
