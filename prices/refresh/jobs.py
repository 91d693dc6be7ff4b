"""The price refresh job: plan once (plan.py), fan out one Celery task per provider batch, count progress.

A Redis lock per scope keeps two refreshes of the same scope from overlapping: starting one while
another runs returns the running job instead.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db import connection
from django.utils import timezone
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from core.events import EventKind, EventLevel, event_record
from core.jobs import (
    TERMINAL,
    job_batch_record,
    job_batch_settled,
    job_claim_finalize,
    job_create,
    job_get,
    job_lock_key,
    job_lock_release,
    job_lock_take,
)
from core.outages import DATABASE_DOWN
from core.redis_store import REDIS_DOWN, redis_retrying
from core.tasks import task_send
from core.wording import job_outcome
from prices.models import Instrument
from prices.providers.gateway import Batch, FetchResult, PriceService
from prices.refresh.plan import refresh_plan, refreshable_instruments
from prices.refresh.store import fetch_result_store

logger = logging.getLogger(__name__)
T = TypeVar("T")

JOB_KIND = "refresh_prices"
# Upper bound of one run, and so of how long its lock may be held if a finisher never comes.
LOCK_SECONDS = 30 * 60
# A lock without its job yet is a run still planning for this long; after it, a run that died planning.
PLANNING_GRACE_SECONDS = 60
# The stuck-job cleaner runs this often (CELERY_BEAT_SCHEDULE "fail-stuck-jobs").
CLEANER_PERIOD_SECONDS = 60


def deadline_slack_seconds() -> int:
    """How long after its last batch could have started a job may still run before the cleaner fails it.

    One batch lives at most CELERY_TASK_TIME_LIMIT, every retry inside it included (they are cut to fit);
    add a run of the cleaner and a minute of queueing. Not the broker's visibility timeout: a batch lost with
    its whole worker (kill -9 of the main process, a lost machine) comes back only after that timeout plus
    Kombu's sweep (~12 min in production), and its job is failed at this deadline instead — its lock freed,
    the next refresh accepted — rather than holding the lock that long (docs/RELIABILITY.md)."""
    return settings.CELERY_TASK_TIME_LIMIT + CLEANER_PERIOD_SECONDS + 60


@dataclass(frozen=True)
class JobStart:
    job_id: str
    already_running: bool = False


def _lock_key(scope: str) -> str:
    return job_lock_key(f"refresh-prices:{scope}")


def refresh_deadline_seconds(service: PriceService, batches: list[Batch]) -> int:
    """How long the run may take: its requests (or, for a provider charging per symbol, its credits) at each
    provider's pace, with room for retries."""
    seconds = 0.0
    for name in {batch.provider for batch in batches}:
        limits = service.gate(name).limits
        cost = sum(limits.cost(len(batch.instruments)) for batch in batches if batch.provider == name)
        seconds += cost / limits.requests_per_second
    return int(seconds * 2) + deadline_slack_seconds()


def prices_refresh_job_start(
    *,
    owner_id: int | None = None,
    instrument_ids: Iterable[int] | None = None,
    force: bool = False,
    lock_scope: str | None = "all",
    service: PriceService | None = None,
) -> JobStart:
    """Plan a refresh of the given (default: all refreshable) instruments and queue its batches."""
    service = service or PriceService()
    job_id = uuid.uuid4().hex
    lock_key = _lock_key(lock_scope) if lock_scope else ""
    if lock_key and (running := job_lock_take(key=lock_key, job_id=job_id, seconds=LOCK_SECONDS,
                                              planning_grace=PLANNING_GRACE_SECONDS)):
        return JobStart(job_id=running, already_running=True)
    plan = refresh_plan(instruments=refreshable_instruments(instrument_ids=instrument_ids), force=force,
                        service=service)
    todo, fresh, batches = plan.todo, plan.fresh, plan.batches
    job_create(kind=JOB_KIND, job_id=job_id, total=len(todo), batches=len(batches), owner_id=owner_id,
               skipped=len(fresh), deadline_seconds=refresh_deadline_seconds(service, batches),
               lock_key=lock_key)
    event_record(kind=EventKind.JOB_STARTED, job_id=job_id, total=len(todo), batches=len(batches),
                 skipped=len(fresh), owner_id=owner_id,
                 message=f"Price refresh started: {len(todo)} instruments in {len(batches)} batches, "
                         f"{len(fresh)} still fresh")
    if not batches:
        if lock_key:
            job_lock_release(key=lock_key, job_id=job_id)
        return JobStart(job_id=job_id)
    for index, batch in enumerate(batches):
        task_send("prices.refresh_batch_task", kwargs={
            "job_id": job_id, "batch_id": f"{index}", "provider": batch.provider,
            "instrument_ids": [instrument.pk for instrument in batch.instruments],
        })
    return JobStart(job_id=job_id)


class _BatchClock:
    """What is left of one batch's time: its retries never outlast the task's soft time limit, so a batch
    always ends (counted, one way or the other) while its worker is still allowed to count it."""

    def __init__(self, seconds: float | None = None) -> None:
        self.ends = time.monotonic() + (seconds or settings.CELERY_TASK_SOFT_TIME_LIMIT - 10)

    def cap(self, seconds: float) -> float:
        return max(1.0, min(seconds, self.ends - time.monotonic()))


def _db_retrying(clock: _BatchClock, call: Callable[[], T], *, what: str, also: tuple = ()) -> T:
    """`call()`, retried while the database (and `also`: Redis) is unreachable, for at most
    REFRESH_DB_RETRY_SECONDS of the batch's time; each retry on a fresh connection."""

    def reconnect(state) -> None:
        logger.warning("%s: %s, retrying", what, state.outcome.exception() if state.outcome else "?")
        connection.close()  # the broken connection goes; the next query opens a new one

    retrying = Retrying(
        retry=retry_if_exception_type(DATABASE_DOWN + also),
        stop=stop_after_delay(clock.cap(settings.REFRESH_DB_RETRY_SECONDS)),
        wait=wait_exponential_jitter(multiplier=0.5, max=10.0, jitter=0.5),
        reraise=True,
        before_sleep=reconnect,
    )
    return retrying(call)


def _redis_call(clock: _BatchClock, call: Callable[[], T], *, what: str) -> T:
    return redis_retrying(call, seconds=clock.cap(settings.REFRESH_REDIS_RETRY_SECONDS), what=what)


def prices_refresh_batch_run(*, job_id: str, batch_id: str, provider: str, instrument_ids: list[int],
                             service: PriceService | None = None) -> None:
    """Fetch, store and count one batch. Safe to run again for the same batch (redelivery): a batch its job
    counted already (or a job that ended) is not fetched again, the upserts are idempotent and the job
    counts the batch once.

    Outages during the batch are waited out, within the batch's time: Redis (its progress, the quote cache)
    and the database (its instruments, then storing what was fetched — kept in memory meanwhile, never
    fetched again). A database still down after REFRESH_DB_RETRY_SECONDS counts the batch failed."""
    clock = _BatchClock()
    label = f"refresh job {job_id} batch {batch_id}"
    settled = _redis_call(clock, lambda: job_batch_settled(job_id=job_id, batch_id=batch_id), what=label)
    if settled:
        logger.info("%s not run again: %s", label, settled)
        _finalize_if_ended(clock, job_id=job_id)
        return
    instruments = _db_retrying(
        clock, lambda: tuple(Instrument.objects.filter(pk__in=instrument_ids).order_by("symbol")), what=label)
    result = (service or PriceService()).fetch_batch(Batch(provider, instruments))
    try:
        _db_retrying(clock, lambda: fetch_result_store(instruments=instruments, result=result, now=timezone.now()),
                     what=f"{label}: storing", also=REDIS_DOWN)
    except DATABASE_DOWN as error:
        reason = f"not stored: database unavailable for {settings.REFRESH_DB_RETRY_SECONDS} s ({type(error).__name__})"
        result = FetchResult(failures={symbol: reason for symbol in result.quotes} | result.failures,
                             unknown=result.unknown)
    missing = set(instrument_ids) - {i.pk for i in instruments}
    errors = [f"{symbol}: {reason}" for symbol, reason in sorted(result.failures.items())]
    errors += [f"{symbol}: unknown to {provider}" for symbol in sorted(result.unknown)]
    errors += [f"instrument #{pk}: deleted before its refresh" for pk in sorted(missing)]
    outcome = _redis_call(clock, lambda: job_batch_record(
        job_id=job_id, batch_id=batch_id, ok=len(result.quotes),
        failed=len(result.failures) + len(result.unknown) + len(missing), errors=errors), what=label)
    if not outcome.counted:
        logger.info("%s not counted again: %s", label, outcome.reason)
    _finalize_if_ended(clock, job_id=job_id)


def _finalize_if_ended(clock: _BatchClock, *, job_id: str) -> None:
    job = _redis_call(clock, lambda: job_get(job_id=job_id), what=f"refresh job {job_id}")
    if job and job["state"] in TERMINAL:
        _redis_call(clock, lambda: prices_refresh_job_finalize(job_id=job_id), what=f"refresh job {job_id} finalize")


def prices_refresh_batch_fail(*, job_id: str, batch_id: str, instrument_ids: list[int], reason: str) -> None:
    """Count a batch that could not be run at all (its retries or its time spent) as failed, so its job ends.
    Called past the soft time limit too: it has what is left before the hard one."""
    clock = _BatchClock(seconds=30)
    _redis_call(clock, lambda: job_batch_record(
        job_id=job_id, batch_id=batch_id, ok=0, failed=len(instrument_ids),
        errors=[f"batch of {len(instrument_ids)} instruments not run: {reason}"[:500]]),
        what=f"refresh job {job_id} batch {batch_id}")
    _finalize_if_ended(clock, job_id=job_id)


def prices_refresh_job_finalize(*, job_id: str) -> None:
    """After the last batch (once, even if its task is redelivered): log the outcome. (The lock went
    with the job's end; each batch's stored prices were announced when written.)"""
    if not job_claim_finalize(job_id=job_id):
        return
    job = job_get(job_id=job_id)
    if job:
        took = (job["finished_at"] or 0) - (job["created_at"] or 0)
        failed = job["state"] == "FAILURE"
        event_record(
            kind=EventKind.JOB_FAILED if failed else EventKind.JOB_FINISHED,
            level=EventLevel.ERROR if failed else EventLevel.WARNING if job["failed"] else EventLevel.INFO,
            message=f"Price refresh {job_outcome(job)} in {took:.1f} s",
            job_id=job_id, done=job["done"], failed=job["failed"], seconds=round(took, 3),
            errors=[e["error"] for e in job["errors"][:5]],
        )
