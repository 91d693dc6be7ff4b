"""Benchmark 3: chart generation for the dashboard portfolio, in a real Celery worker.

The worker runs the solo pool, so the task runs in the process whose memory is read: its peak
resident set (VmHWM, from /proc) is the worker's real peak, imports included. Time is the worker's own
(from the generation's start to its SUCCESS, as it records them in the progress hash), and also seen
from the enqueue.

A chart worker process keeps the close histories it read (prices/series.py) and asks Postgres only which
series rows changed: the runs after the first are the production case (the chart of a portfolio made
again the same day: nothing changed, nothing sent). The first run, in a fresh worker, reads them all
(cold). A worker also keeps the exact valuations of its last generations and reuses a day's when it is
valued from the same inputs again, the replay of the transactions when they are the same, and the value
grid's days before the first whose inputs changed (charts/valuations_kept.py); the same-day runs are made in a
worker that keeps none
(CHART_KEPT_VALUATIONS_MB=0), every transaction replayed and every day valued again as after a trade (which
changes the positions every day shares: nothing kept would serve), so they time a whole generation.

After a new day's closes, this year's row of every instrument has a new revision and is sent again, and the days
valued from those closes are valued again. Timed apart, in a worker as configured (keeping its valuations), made
ready by one generation: before each run the last close of each of the portfolio's instruments is moved by a
cent (up, then back down on the next run: after an even number of runs, and at the end in any case, every close
is as it was, so no later section's data changes), re-packing this year's series rows as a new day's closes do.
The bench's today does not move, so the days whose valuation a real new day moves besides today and the day
before (the bases of 1Y and 5Y, a day later each day) keep theirs here. The series are vacuumed before each such
day, as autovacuum (on by default; off on some CI machines' Postgres) keeps them between days: each new day then
finds one day's rows re-packed, not the dead rows of every earlier run, whose growth would make the planner scan
the whole table and JIT-compile the query (docs/charts.md).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.stats import summary_ms
from bench.workers import celery_worker

TIMEOUT_SECONDS = 120


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _generate_once(portfolio_id: int) -> dict:
    from charts.cache import chart_progress_get
    from charts.tasks import generate_chart_data_task

    enqueued_at = time.time()
    # Always a full generation: a run finding the chart already current skips the work (charts.services),
    # and every run after the first would then time a skip, not a generation.
    generate_chart_data_task.apply_async(args=[portfolio_id], kwargs={"even_if_current": True})
    started = time.monotonic()
    while True:
        progress = chart_progress_get(portfolio_id=portfolio_id)
        if progress and progress["state"] in ("SUCCESS", "FAILURE") and progress["updated_at"] >= enqueued_at:
            break
        if time.monotonic() - started > TIMEOUT_SECONDS:
            raise TimeoutError(f"chart generation not finished after {TIMEOUT_SECONDS} s: {progress}")
        time.sleep(0.01)
    if progress["state"] != "SUCCESS":
        raise RuntimeError(f"chart generation failed: {progress['error']}")
    return {"worker_seconds": _worker_seconds(portfolio_id), "end_to_end_seconds": time.monotonic() - started}


def _worker_seconds(portfolio_id: int) -> float:
    from core.redis_store import redis_client, redis_key

    raw = redis_client().hmget(redis_key("chart", portfolio_id, "progress"), "started_at", "updated_at")
    return float(raw[1]) - float(raw[0])


def last_closes_moved(*, portfolio_id: int, cents: int) -> int:
    """What a new day's closes do to the portfolio's chart: the last close before today of each of its instruments
    moved by `cents` (written in place, through the price table's triggers: this year's series row of each
    re-packed, with a new revision and new closes), on series vacuumed first (the refresh section's re-packs and the
    previous new day's gone, as autovacuum would leave them). Returns the closes moved."""
    from django.db import connection
    from django.utils import timezone

    from portfolio.models import Transaction
    from prices.models import PriceHistory, PriceSeries

    prices, series = PriceHistory._meta.db_table, PriceSeries._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {series}")
        cursor.execute(
            f"UPDATE {prices} p SET close = p.close + %s FROM (SELECT instrument_id, max(date) AS date FROM {prices} "
            f"WHERE date < %s AND instrument_id IN (SELECT instrument_id FROM {Transaction._meta.db_table} "
            "WHERE portfolio_id = %s) GROUP BY instrument_id) last "
            "WHERE p.instrument_id = last.instrument_id AND p.date = last.date",
            [cents / 100, timezone.localdate(), portfolio_id])
        return cursor.rowcount


def _peak_kib(worker) -> int:
    return _status_kib(worker.process.pid, "VmHWM")


def run(*, data, runs: int) -> dict:
    from charts.cache import chart_data_get, chart_data_key
    from core.redis_store import redis_client

    pid = data.portfolio_id
    with celery_worker(queue="charts", pool="solo", concurrency=1, env={"CHART_KEPT_VALUATIONS_MB": "0"}) as worker:
        idle_kib = _status_kib(worker.process.pid, "VmRSS")
        # Imports, first-touch costs and every close read (the process keeps none yet), reported apart.
        first = _generate_once(pid)
        samples = [_generate_once(pid) for _ in range(runs)]
        peak_kib = _peak_kib(worker)
    with celery_worker(queue="charts", pool="solo", concurrency=1) as worker:
        _generate_once(pid)  # what the worker keeps from a generation before the new day
        new_day, moved = [], 0
        for k in range(max(2, runs // 3)):
            moved = last_closes_moved(portfolio_id=pid, cents=1 if k % 2 == 0 else -1)
            new_day.append(_generate_once(pid))
        if len(new_day) % 2:
            last_closes_moved(portfolio_id=pid, cents=-1)
        peak_kib = max(peak_kib, _peak_kib(worker))
    payload = chart_data_get(portfolio_id=pid) or {}
    # Whatever layout the cache uses (one payload or one field per part), its size is all of its values.
    stored_bytes = sum(len(value) for value in redis_client().hvals(chart_data_key(pid)))
    return {
        "runs": runs,
        "first_run_seconds": round(first["worker_seconds"], 3),
        "worker_ms": summary_ms([s["worker_seconds"] for s in samples]),
        # after the last closes moved (a new day's closes): this year's series rows sent again, the days valued from
        # those closes valued again
        "new_day_worker_ms": summary_ms([s["worker_seconds"] for s in new_day]),
        "new_day_closes_moved": moved,
        "end_to_end_ms": summary_ms([s["end_to_end_seconds"] for s in samples]),
        "worker_idle_rss_mb": round(idle_kib / 1024, 1),
        "worker_peak_rss_mb": round(peak_kib / 1024, 1),
        "peak_over_idle_mb": round((peak_kib - idle_kib) / 1024, 1),
        "series_points": {name: len(points) for name, points in payload.get("ranges", {}).items()},
        "sparklines": len(payload.get("sparklines", {})),
        "cached_payload_kb": round(stored_bytes / 1024, 1),
    }
