"""The price refresh job: plan once, fan out one Celery task per provider batch, count progress.

Cost grows with unique instruments, never with holdings or users: the plan is over instruments,
whoever holds them. Instruments with a still-fresh cached quote are skipped (no wasted quota). A
Redis lock per scope keeps two refreshes of the same scope from overlapping: starting one while
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
from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from django_redis import get_redis_connection
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

from core.wording import job_outcome
from monitoring.events import EventKind, EventLevel, event_record
from monitoring.jobs import (
    REDIS_DOWN,
    TERMINAL,
    job_batch_record,
    job_batch_settled,
    job_claim_finalize,
    job_create,
    job_get,
    redis_retrying,
)
from prices.models import Instrument
from prices.quote_cache import quotes_cache_get
from prices.refresh import fetch_result_store, refreshable_instruments
from prices.service import Batch, FetchResult, PriceService

logger = logging.getLogger(__name__)
T = TypeVar("T")

JOB_KIND = "refresh_prices"
# Upper bound of one run, and so of how long its lock may be held if a finisher never comes.
LOCK_SECONDS = 30 * 60
# A lock without its job yet is a run still planning for this long; after it, a run that died planning.
PLANNING_GRACE_SECONDS = 60
# The stuck-job cleaner runs this often (CELERY_BEAT_SCHEDULE "fail-stuck-jobs").
CLEANER_PERIOD_SECONDS = 60
# A database error that means "connection lost or server gone": worth reconnecting and trying again.
DB_DOWN = (OperationalError, InterfaceError)


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
    return f"folio:lock:refresh-prices:{scope}"


# Take a lock over from a holder known to be done: one step, so two takers can never both win.
_LOCK_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end
return 0
"""


def _lock_take(scope: str, job_id: str) -> str | None:
    """Take the scope's lock; the id of the job holding it when that one is still running."""
    client = get_redis_connection("default")
    key = _lock_key(scope)
    for _ in range(3):  # the lock changing hands between our reads: look again
        if client.set(key, job_id, nx=True, ex=LOCK_SECONDS):
            return None
        holder = (client.get(key) or b"").decode()
        if not holder:
            continue  # released a moment ago: try to take it again
        running = job_get(job_id=holder)
        if running and running["state"] not in TERMINAL:
            return holder
        if running is None and client.ttl(key) > LOCK_SECONDS - PLANNING_GRACE_SECONDS:
            return holder  # taken a moment ago by a run still planning its job: that run is this one
        # The holder ended without releasing it, or died planning: take it over, unless another taker won.
        if client.eval(_LOCK_TAKE_OVER, 1, key, holder, job_id, LOCK_SECONDS):
            return None
    holder = (client.get(key) or b"").decode()
    return holder or None


def _lock_release(scope: str, job_id: str) -> None:
    client = get_redis_connection("default")
    # Only the job that holds it releases it (compare-and-delete).
    client.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                1, _lock_key(scope), job_id)


def _deadline_seconds(service: PriceService, batches: list[Batch]) -> int:
    """How long the run may take: its requests at each provider's pace, with room for retries."""
    seconds = 0.0
    for name in {batch.provider for batch in batches}:
        count = sum(1 for batch in batches if batch.provider == name)
        seconds += count / service.gate(name).limits.requests_per_second
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
    from prices.tasks import refresh_batch_task  # noqa: PLC0415 (tasks import this module)

    service = service or PriceService()
    job_id = uuid.uuid4().hex
    if lock_scope and (running := _lock_take(lock_scope, job_id)):
        return JobStart(job_id=running, already_running=True)
    instruments = list(refreshable_instruments(instrument_ids=instrument_ids))
    fresh = set() if force else set(quotes_cache_get(symbols=[i.symbol for i in instruments]))
    todo = [instrument for instrument in instruments if instrument.symbol not in fresh]
    batches = service.plan_batches(todo)
    job_create(kind=JOB_KIND, job_id=job_id, total=len(todo), batches=len(batches), owner_id=owner_id,
               skipped=len(fresh), deadline_seconds=_deadline_seconds(service, batches),
               lock_key=_lock_key(lock_scope) if lock_scope else "")
    event_record(kind=EventKind.JOB_STARTED, job_id=job_id, total=len(todo), batches=len(batches),
                 skipped=len(fresh), owner_id=owner_id,
                 message=f"Price refresh started: {len(todo)} instruments in {len(batches)} batches, "
                         f"{len(fresh)} still fresh")
    if not batches:
        if lock_scope:
            _lock_release(lock_scope, job_id)
        return JobStart(job_id=job_id)
    for index, batch in enumerate(batches):
        refresh_batch_task.apply_async(kwargs={
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
        retry=retry_if_exception_type(DB_DOWN + also),
        stop=stop_after_delay(clock.cap(settings.REFRESH_DB_RETRY_SECONDS)),
        wait=wait_exponential_jitter(multiplier=0.5, max=10.0, jitter=0.5),
        reraise=True,
        before_sleep=reconnect,
    )
    return retrying(call)


def _redis(clock: _BatchClock, call: Callable[[], T], *, what: str) -> T:
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
    settled = _redis(clock, lambda: job_batch_settled(job_id=job_id, batch_id=batch_id), what=label)
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
    except DB_DOWN as error:
        reason = f"not stored: database unavailable for {settings.REFRESH_DB_RETRY_SECONDS} s ({type(error).__name__})"
        result = FetchResult(failures={symbol: reason for symbol in result.quotes} | result.failures,
                             unknown=result.unknown)
    missing = set(instrument_ids) - {i.pk for i in instruments}
    errors = [f"{symbol}: {reason}" for symbol, reason in sorted(result.failures.items())]
    errors += [f"{symbol}: unknown to {provider}" for symbol in sorted(result.unknown)]
    errors += [f"instrument #{pk}: deleted before its refresh" for pk in sorted(missing)]
    outcome = _redis(clock, lambda: job_batch_record(
        job_id=job_id, batch_id=batch_id, ok=len(result.quotes),
        failed=len(result.failures) + len(result.unknown) + len(missing), errors=errors), what=label)
    if not outcome.counted:
        logger.info("%s not counted again: %s", label, outcome.reason)
    _finalize_if_ended(clock, job_id=job_id)


def _finalize_if_ended(clock: _BatchClock, *, job_id: str) -> None:
    job = _redis(clock, lambda: job_get(job_id=job_id), what=f"refresh job {job_id}")
    if job and job["state"] in TERMINAL:
        _redis(clock, lambda: prices_refresh_job_finalize(job_id=job_id), what=f"refresh job {job_id} finalize")


def prices_refresh_batch_fail(*, job_id: str, batch_id: str, instrument_ids: list[int], reason: str) -> None:
    """Count a batch that could not be run at all (its retries or its time spent) as failed, so its job ends.
    Called past the soft time limit too: it has what is left before the hard one."""
    clock = _BatchClock(seconds=30)
    _redis(clock, lambda: job_batch_record(
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
