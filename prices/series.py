"""Instruments' close histories read whole from their packed series (prices.PriceSeries), Postgres only.

A chart of 500 holdings × 10 years needs 1.26 M closes. As rows, Postgres aggregates them on every
generation (about half of its time), although all but today's never change. The series hold the same
closes packed one calendar year per row, kept exact by the database's own triggers in the transaction
that writes the prices (migration prices/0005): reading them is ~5,000 rows of binary strings that numpy
reads whole. Closes are the stored (unadjusted) ones, as whole millionths: exact.
"""

from contextlib import nullcontext
from datetime import date
from operator import itemgetter

import numpy as np
import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper

from prices.models import PriceSeries

_EPOCH = date(1970, 1, 1)
# The advisory locks the series triggers take per instrument (migration prices/0005): namespace, and the
# instrument id modulo 2^31 - 1 as the other key.
SERIES_LOCK_SPACE = 7215


def price_series_available() -> bool:
    """The series are kept (by triggers) on Postgres only."""
    return connection.vendor == "postgresql"


def price_series_lock(*, instrument_ids: list[int]) -> None:
    """Take, in id order, the locks the series triggers take for these instruments, before the caller
    writes their price rows (in its transaction, until it ends). Taken only by the triggers, after the
    rows, two writers could deadlock: each holding one instrument's lock from an earlier statement while
    waiting on a row the other one wrote. No-op off Postgres."""
    if not price_series_available() or not instrument_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, (i %% 2147483647)::int) FROM unnest(%s::bigint[]) AS i ORDER BY i",
            [SERIES_LOCK_SPACE, sorted(set(instrument_ids))],
        )


def price_series_load(*, instrument_ids: list[int], start: date,
                      before: date | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(instrument ids, dates, closes in millionths) sorted by (instrument id, date): every close from
    `start` on (and dated before `before`, when given), plus each instrument's last close before `start`
    (carried into the first days)."""
    instruments, starts, days, micros = price_series_runs_load(instrument_ids=instrument_ids, start=start,
                                                               before=before)
    return np.repeat(instruments, np.diff(starts)), days, micros


def price_series_runs_load(*, instrument_ids: list[int], start: date,
                           before: date | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The closes of price_series_load with each instrument's id once: (instruments with closes, ascending;
    where each one's rows start, then the number of rows; dates; closes in millionths)."""
    table = PriceSeries._meta.db_table
    sql = (
        f"(SELECT instrument_id, year, days, micros FROM {table}"
        " WHERE instrument_id = ANY(%(ids)s) AND year >= %(year)s)"
        # The newest year before `start`'s of each instrument: its last close is the seed, and only it is
        # sent (12 bytes, not the year's 3 kB).
        " UNION ALL (SELECT DISTINCT ON (instrument_id) instrument_id, year,"
        " substring(days FROM octet_length(days) - 3), substring(micros FROM octet_length(micros) - 7)"
        f" FROM {table} WHERE instrument_id = ANY(%(ids)s) AND year < %(year)s ORDER BY instrument_id, year DESC)"
    )
    chunks = _fetch_binary(sql, {"ids": list(instrument_ids), "year": start.year})
    if not chunks:
        return np.empty(0, "i8"), np.zeros(1, "i8"), np.empty(0, "M8[D]"), np.empty(0, "i8")
    # Ordered here, not by the query: Postgres would sort the rows with their bytes (15 MB for 500
    # instruments × 10 years, past work_mem: a merge through temporary files, ~50 of the query's ~60 ms),
    # where sorting 5,000 tuples by their two keys costs ~1 ms. (instrument_id, year) is unique: no ties.
    chunks.sort(key=itemgetter(0, 1))
    chunk_ids = np.fromiter((row[0] for row in chunks), dtype="i8", count=len(chunks))
    years = np.fromiter((row[1] for row in chunks), dtype="i8", count=len(chunks))
    counts = np.fromiter((len(row[2]) // 4 for row in chunks), dtype="i8", count=len(chunks))
    # One run of chunks per instrument (its years in order).
    firsts = np.flatnonzero(np.concatenate([[True], chunk_ids[1:] != chunk_ids[:-1]]))
    run_of = np.repeat(np.arange(len(firsts)), np.diff(np.append(firsts, len(chunks))))
    # Keep every close from `start` on (dated before `before`), and of the earlier ones only each
    # instrument's last: per run, rows lo .. hi-1 (dates ascending). (`before` ahead of `start`, which no
    # caller asks, would make the two ends cross: nothing is kept then.)
    early = _runs_add(_rows_before(chunks, years, counts, start), firsts)
    lo = np.maximum(early - 1, 0)
    hi = np.maximum(_runs_add(_rows_before(chunks, years, counts, before), firsts) if before else
                    _runs_add(counts, firsts), lo)
    # The rows dropped are cut from the chunks' bytes before these are joined (only the chunks of
    # `start`'s and `before`'s years can lose rows): the joined arrays are the closes kept, with no
    # copies of 1.26 M rows through a mask.
    chunk_starts = np.cumsum(counts) - counts
    in_run = chunk_starts - chunk_starts[firsts][run_of]
    cut_lo = np.clip(lo[run_of] - in_run, 0, counts)
    cut_hi = np.clip(hi[run_of] - in_run, 0, counts)
    cut = np.flatnonzero((cut_lo > 0) | (cut_hi < counts))
    days_parts, micros_parts = [row[2] for row in chunks], [row[3] for row in chunks]
    del chunks
    for k, a, b in zip(cut.tolist(), cut_lo[cut].tolist(), cut_hi[cut].tolist(), strict=True):
        days_parts[k], micros_parts[k] = days_parts[k][4 * a:4 * b], micros_parts[k][8 * a:8 * b]
    # Each array made once, straight from the joined bytes (big-endian, as Postgres sends them), and the
    # bytes let go before the next: a 10-year chart's closes are 15 MB of them.
    days_bytes = b"".join(days_parts)
    del days_parts
    days = np.frombuffer(days_bytes, dtype=">i4").astype("M8[D]")
    del days_bytes
    micros_bytes = b"".join(micros_parts)
    del micros_parts
    micros = np.frombuffer(micros_bytes, dtype=">i8").astype("i8")
    del micros_bytes
    kept = hi - lo
    # One with no close left has no run.
    return chunk_ids[firsts][kept > 0], np.concatenate([[0], np.cumsum(kept[kept > 0])]), days, micros


def _rows_before(chunks: list[tuple], years: np.ndarray, counts: np.ndarray, day: date) -> np.ndarray:
    """Per chunk, how many of its closes are dated before `day`: all of a year before `day`'s, none of a
    later one, and those of `day`'s year read from their bytes (a year's days each)."""
    below = np.where(years < day.year, counts, 0)
    straddling = np.flatnonzero(years == day.year)
    if len(straddling):
        dated_before = np.frombuffer(b"".join(chunks[k][2] for k in straddling.tolist()),
                                     dtype=">i4") < (day - _EPOCH).days
        ends = np.concatenate([[0], np.cumsum(dated_before)])[np.cumsum(counts[straddling])]
        below[straddling] = np.diff(ends, prepend=0)
    return below


def _runs_add(per_chunk: np.ndarray, firsts: np.ndarray) -> np.ndarray:
    """Per run of chunks (each starting at `firsts`), the sum of its chunks' values."""
    totals = np.concatenate([[0], np.cumsum(per_chunk)])
    return np.diff(totals[np.append(firsts, len(per_chunk))])


def _fetch_binary(sql: str, params: dict) -> list[tuple]:
    """Rows in Postgres's binary format: a bytea arrives as its bytes, not as hex text to decode (a
    quarter of the CPU for 15 MB of series). Django's client-side cursors cannot ask for binary results,
    so a psycopg cursor on the same connection (same transaction) runs the query — logged as Django logs
    queries when it does (DEBUG, CaptureQueriesContext)."""
    with connection.cursor() as wrapper:  # connects if needed
        # Logged with its values bound, as Django logs its own queries (the bench explains the logged SQL).
        debugging = isinstance(wrapper, CursorDebugWrapper)
        logged = wrapper.debug_sql(connection.ops.compose_sql(sql, params)) if debugging else nullcontext()
        with logged, psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params, binary=True)
            return cursor.fetchall()
