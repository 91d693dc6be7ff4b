"""Generating a portfolio's chart data in the workers, debounced, with progress in Redis."""

from __future__ import annotations

import ctypes
import functools
import logging
import time
from collections.abc import Iterable

from django.conf import settings
from django.utils import timezone

from charts.benchmark import benchmark_compare, benchmark_live_base
from charts.cache import (
    chart_data_store,
    chart_generation_forget,
    chart_generation_state,
    chart_generations_moved_at,
    chart_generations_stalled,
    chart_making_forget,
    chart_making_release,
    chart_making_take,
    chart_making_what,
    chart_progress_get,
    chart_progress_set,
    chart_reads_forget,
    chart_reads_since,
)
from charts.compute import chart_data_compute, chart_series_compute
from charts.performance import performance_with_live_compute, twr_growth_index
from charts.selectors import benchmark_closes_load, chart_inputs_load
from charts.valuations_kept import valuations_kept_get, valuations_kept_put
from core.events import EventKind, EventLevel, event_record
from core.redis_store import claims_take, redis_client, redis_key
from core.tasks import task_send
from portfolio.models import Portfolio

logger = logging.getLogger(__name__)

GENERATION_STEPS = 3  # load the inputs, compute every range and the performance, store
# How long a run's mark of what it makes holds readers back from asking for another run of it: a run
# still going after that is taken for lost (the stuck-job cleaner fails it later, at
# CHART_GENERATION_STUCK_SECONDS); one really that slow may then run twice, no worse.
MAKING_SECONDS = 60


# glibc's mallopt parameters (malloc.h), and what a generating process is set to.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_ARRAYS_BYTES = 32 << 20  # glibc's largest mmap threshold: a 10-year chart's biggest arrays are ~15 MB
_KEPT_FREE_BYTES = 64 << 20


@functools.cache
def _allocator_keeps_memory() -> None:
    """A generation allocates ~100 MB of large numpy arrays and bytes (the closes, their keys, the grids'
    blocks) and frees them at its end. glibc maps each array of 128 kB or more on its own and unmaps it
    when freed, so the next generation has the kernel fault in and zero the same pages again: 2,800-5,500
    page faults and 14-30 ms of system time per 500-holding generation (~270 and 7-11 ms so). Arrays up
    to 32 MB come from the heap instead, and up to 64 MB of free heap is kept for the next one: the peak is
    unchanged (it is the generation's), but it stays resident at about that peak between generations.
    Once per process, on its first generation (the web processes, which never generate, are left as
    they are); a C library without mallopt (not glibc) keeps its own ways."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _HEAP_ARRAYS_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _KEPT_FREE_BYTES)


def _scheduled_key(portfolio_id: int) -> str:
    return redis_key("chart", portfolio_id, "scheduled")


def _prompt_key(portfolio_id: int) -> str:
    return redis_key("chart", portfolio_id, "prompt")


def chart_regeneration_request(*, portfolio_ids: Iterable[int], at_once: bool = False,
                               even_if_current: bool = False, debounced: bool = True) -> list[int]:
    """Queue one regeneration per portfolio, CHART_DEBOUNCE_SECONDS from now: a burst of edits or
    price batches within that window causes one run. `at_once`: queued now, for a portfolio with no
    chart to serve meanwhile (claimed apart, so a debounced run already waiting does not hold it back).
    Not `debounced`: queued now under the debounced runs' claim, for a batch with no burst to wait out (the new
    day's: thousands of countdowns would each be held by the worker that took it, not shared among the workers
    as the queue shares what is due now).
    A run finding the chart already current (made by another run since) skips the work, unless
    `even_if_current`. Returns the portfolios newly queued."""
    ids = sorted(set(portfolio_ids))
    if not ids:
        return []
    try:
        # The claim outlives the countdown; the task drops it when it starts.
        queued = claims_take(ids=ids, key=_prompt_key if at_once else _scheduled_key,
                             seconds=settings.CHART_DEBOUNCE_SECONDS + 300)
        countdown = settings.CHART_DEBOUNCE_SECONDS if debounced and not at_once else 0
        for portfolio_id in queued:
            chart_progress_set(portfolio_id=portfolio_id, state="PENDING", done=0, total=GENERATION_STEPS)
            task_send("charts.generate_chart_data_task", countdown=countdown,
                      kwargs={"portfolio_id": portfolio_id, "even_if_current": even_if_current})
        return queued
    except Exception:  # Redis or the broker down: the last good chart keeps being served
        logger.warning("could not queue chart regeneration for %s", ids, exc_info=True)
        return []


def charts_new_day_regenerate(*, now: float | None = None) -> dict[str, int]:
    """Queue, due now (not debounced), a regeneration of the chart of every portfolio read in the last
    CHART_NEW_DAY_READ_DAYS days (chart_reads_since; the marks of older reads and of portfolios gone are dropped).
    Run just after midnight (the beat's "charts-new-day"): every chart was then made for the day before, so each
    one's first read of the day would be served outdated while it is made again; these are made before anyone
    asks. Charts nobody read in that window are left to be made on their next read, and to expire
    (CHART_TTL_SECONDS) meanwhile. Returns how many portfolios were read in the window and how many of them were
    queued (the others already were)."""
    days = settings.CHART_NEW_DAY_READ_DAYS
    if days <= 0:
        return {"read": 0, "queued": 0}
    read = chart_reads_since(since=(now or time.time()) - days * 86400)
    existing = set(Portfolio.objects.filter(pk__in=read).values_list("pk", flat=True))
    chart_reads_forget(portfolio_ids=[pid for pid in read if pid not in existing])
    queued = 0
    # In batches: the claims of one batch are one round trip.
    for at in range(0, len(read), _NEW_DAY_BATCH):
        queued += len(chart_regeneration_request(
            portfolio_ids=[pid for pid in read[at:at + _NEW_DAY_BATCH] if pid in existing], debounced=False))
    if existing:  # what the night did, on the monitoring page
        count = f"{len(existing)} portfolio" + ("s" if len(existing) != 1 else "")
        event_record(kind=EventKind.JOB_STARTED, message=f"New day: the charts of {count} read in the last {days} days "
                     f"are made again ({queued} queued, the others already were)", read=len(existing), queued=queued)
    return {"read": len(existing), "queued": queued}


_NEW_DAY_BATCH = 1000


def chart_regeneration_ask(*, portfolio_id: int, history_version: int, served: bool) -> None:
    """A reader found no current chart (`served`: an outdated one was served). Nothing is queued while a
    run is making this version for today — the page's polls during a generation — and an outdated chart
    is regenerated debounced; with none to serve, at once (there is nothing to debounce: the reader
    waits), unless the last generation failed (its retries stay debounced). A run's mark lasts
    MAKING_SECONDS."""
    try:
        making = chart_making_what(version=history_version, day=timezone.localdate())
        state, being_made = chart_generation_state(portfolio_id=portfolio_id, what=making)
    except Exception:  # Redis down: nothing can be queued either
        logger.warning("chart generation state of portfolio %s unreadable", portfolio_id, exc_info=True)
        return
    if not being_made:
        chart_regeneration_request(portfolio_ids=[portfolio_id], at_once=not served and state != "FAILURE")


def chart_data_generate(*, portfolio_id: int, even_if_current: bool = True) -> int | None:
    """Compute and cache every range of a portfolio's chart data, its performance included (under
    "performance": one replay and one valuation grid serve both), through the last completed session with
    today valued at the last closes (under "live": what charts.live needs to move today to the current
    valuation); returns the history version cached.

    The version is read before the inputs, and after the claims are dropped: a write landing during
    the computation bumps it past what is cached and queues a run of its own, so that write's request is
    never mistaken as done. The run marks what it makes (chart_making_take) so that readers polling
    meanwhile queue nothing more. Unless `even_if_current`, a run finding the chart already current (or a
    newer one cached), or another run making the same version or a newer one (a debounced run and the one a
    reader asked for at once), leaves it at that — found in the same step as the mark is taken: checked apart,
    a run of the same version storing and dropping its mark in between had this one make the chart again.
    """
    _allocator_keeps_memory()
    redis_client().delete(_scheduled_key(portfolio_id), _prompt_key(portfolio_id))
    portfolio = Portfolio.objects.filter(pk=portfolio_id).select_related("benchmark").first()
    if portfolio is None:
        chart_generation_forget(portfolio_id=portfolio_id)
        return None
    version = portfolio.history_version
    today = timezone.localdate()
    held, made = chart_making_take(portfolio_id=portfolio_id, version=version, day=today, seconds=MAKING_SECONDS,
                                   unless_made=not even_if_current)
    if made:
        chart_progress_set(portfolio_id=portfolio_id, state="SUCCESS", done=GENERATION_STEPS, total=GENERATION_STEPS)
        return version
    if held is None and not even_if_current:
        return version
    chart_progress_set(portfolio_id=portfolio_id, state="PROGRESS", done=0, total=GENERATION_STEPS)
    try:
        # History only: today's closes are live (they change every few minutes and are not final), and
        # today's point is moved to the current valuation when the chart is read (charts.live).
        known = valuations_kept_get(portfolio_id=portfolio_id)
        inputs = chart_inputs_load(portfolio=portfolio, closes_before=today,
                                   kept=known.loaded if known is not None else None)
        chart_progress_set(portfolio_id=portfolio_id, state="PROGRESS", done=1, total=GENERATION_STEPS)
        series = chart_series_compute(inputs, today=today, known=known)
        performance, live = performance_with_live_compute(inputs, today=today, series=series)
        data = {**chart_data_compute(inputs, today=today, series=series, as_text=True),
                "performance": performance, "live": live}
        if live is not None:
            # Hundreds of flows for a long range: a part of their own, which only the performance reads.
            data["live_flows"] = {key: figures.pop("flows") for key, figures in live["ranges"].items()}
            live["sparklines"] = [int(instrument_id) for instrument_id in data["sparklines"]]
        if portfolio.benchmark_id and series is not None:
            close_dates, closes = benchmark_closes_load(instrument_id=portfolio.benchmark_id, start=series.first,
                                                        closes_before=today)
            growth = twr_growth_index(inputs, series=series)
            data["benchmark"] = benchmark_compare(
                symbol=portfolio.benchmark.symbol, days=series.days, growth=growth, close_dates=close_dates,
                closes=closes, ranges=data["ranges"])
            live["benchmark"] = benchmark_live_base(
                instrument_id=portfolio.benchmark_id, days=series.days, growth=growth, close_dates=close_dates,
                closes=closes, ranges=data["ranges"])
        chart_progress_set(portfolio_id=portfolio_id, state="PROGRESS", done=2, total=GENERATION_STEPS)
        chart_data_store(portfolio_id=portfolio_id, version=version, data=data)
        if series is not None:
            valuations_kept_put(portfolio_id=portfolio_id, valuations=series.kept())
    except Exception as error:
        # The last good chart stays in the cache and keeps being served, marked with its age.
        chart_progress_set(portfolio_id=portfolio_id, state="FAILURE", done=0, total=GENERATION_STEPS,
                           error=f"{type(error).__name__}: {error}")
        raise
    finally:
        if held is not None:
            chart_making_release(portfolio_id=portfolio_id, held=held)
    chart_progress_set(portfolio_id=portfolio_id, state="SUCCESS", done=GENERATION_STEPS, total=GENERATION_STEPS)
    return version


def chart_generations_fail_stuck(*, now: float | None = None) -> list[int]:
    """Fail every chart generation whose progress has not moved for CHART_GENERATION_STUCK_SECONDS (its pool
    process was killed, or it hit the hard time limit: nothing else ends it) and queue it again, its
    claims and its mark of what it made dropped first. One still queued (PENDING) is taken for lost only once
    no generation at all has moved for that long either: behind a backlog (the charts read lately, made again
    just after midnight; a close that moves the history of thousands of portfolios) it waits its turn while
    the workers work through the queue. The stuck-job cleaner runs this every minute."""
    now = now or time.time()
    bound = settings.CHART_GENERATION_STUCK_SECONDS
    stalled = chart_generations_stalled(before=now - bound)
    queue_moving = stalled and (chart_generations_moved_at() or 0.0) >= now - bound
    requeued = []
    for portfolio_id in stalled:
        progress = chart_progress_get(portfolio_id=portfolio_id)
        if progress is None or not Portfolio.objects.filter(pk=portfolio_id).exists():
            chart_generation_forget(portfolio_id=portfolio_id)
            continue
        if progress["state"] not in ("PENDING", "PROGRESS") or progress["updated_at"] >= now - bound:
            continue  # moved on meanwhile
        if progress["state"] == "PENDING" and queue_moving:
            continue  # queued behind others that are being made
        reason = f"timed out: no progress for {int(now - progress['updated_at'])} s at {progress['done']}/" \
                 f"{progress['total']} (worker lost?); queued again"
        chart_progress_set(portfolio_id=portfolio_id, state="FAILURE", done=progress["done"],
                           total=progress["total"], error=reason)
        redis_client().delete(_scheduled_key(portfolio_id), _prompt_key(portfolio_id))
        chart_making_forget(portfolio_id=portfolio_id)
        event_record(kind=EventKind.JOB_FAILED, level=EventLevel.WARNING, portfolio_id=portfolio_id,
                     message=f"Chart generation of portfolio {portfolio_id} {reason}")
        chart_regeneration_request(portfolio_ids=[portfolio_id])
        requeued.append(portfolio_id)
    return requeued
