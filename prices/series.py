"""Instruments' close histories read whole from their packed series (prices.PriceSeries), Postgres only.

A chart of 500 holdings × 10 years needs 1.26 M closes. As rows, Postgres aggregates them on every
generation (about half of its time), although all but today's never change. The series hold the same
closes packed one calendar year per row, kept exact by the database's own triggers in the transaction
that writes the prices (migration prices/0005): reading them is ~5,000 rows of binary strings that numpy
reads whole. Closes are the stored (unadjusted) ones, as whole millionths: exact.

Each process keeps what it read (`_SeriesCache`, up to PRICE_SERIES_CACHE_MB) with each row's revision
(migration prices/0009), and its next read of the same instruments from the same start asks, from an index,
which rows are named now and is sent only those whose revision it does not hold: on a regeneration the same
day, none (two counts sent); after a new day's closes, this year's.
"""

import itertools
import os
import threading
from collections import OrderedDict
from contextlib import nullcontext
from datetime import date
from operator import itemgetter
from typing import NamedTuple

import numpy as np
import psycopg
from django.conf import settings
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


def day_numbers(days: date | np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 as int32, how the closes' dates are held (a datetime64 takes 8 bytes: 5 MB more
    for the 1.26 M closes of 500 holdings × 10 years, kept by each chart worker between generations). A
    date, or an array of datetime64[D]."""
    return np.asarray(np.datetime64(days, "D") if isinstance(days, date) else days, dtype="M8[D]").astype("i4")


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
    """(instrument ids, dates as days since 1970-01-01 (int32), closes in millionths) sorted by (instrument id,
    date): every close from
    `start` on (and dated before `before`, when given), plus each instrument's last close before `start`
    (carried into the first days)."""
    instruments, starts, days, micros = price_series_runs_load(instrument_ids=instrument_ids, start=start,
                                                               before=before)
    return np.repeat(instruments, np.diff(starts)), days, micros


def price_series_runs_load(*, instrument_ids: list[int], start: date,
                           before: date | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The closes of price_series_load with each instrument's id once: (instruments with closes, ascending;
    where each one's rows start, then the number of rows; days since 1970-01-01 (int32); closes in millionths).
    The arrays may be the process's own (kept for its next reads of the same instruments and start): read-only."""
    return price_series_runs_read(instrument_ids=instrument_ids, start=start, before=before)[0]


class SeriesLineage(NamedTuple):
    """What a read of price_series_runs_read was made from, for a caller keeping what it made of an earlier one:
    `read` names this read (None: not kept, so no later read is made from it); `previous` the kept read it was made
    from (None: read whole); `changed_from` the first day whose closes may differ from `previous`'s (None: none
    differ: the very arrays). When it is after the read's start, the closes dated before it, of every instrument,
    are `previous`'s, row for row; on or before the start, the close carried into the start (each instrument's last
    before it, dated earlier still) may differ too: nothing is then the same (review r31)."""

    read: int | None
    previous: int | None = None
    changed_from: date | None = None


def price_series_runs_read(*, instrument_ids: list[int], start: date, before: date | None = None
                           ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], SeriesLineage]:
    """price_series_runs_load's arrays, and what they were made from (SeriesLineage)."""
    return _SERIES_CACHE.load(instrument_ids=instrument_ids, start=start, before=before)


class _Chunks(NamedTuple):
    """What a read is decoded from (_decode), in (instrument id, year) order: per chunk, its instrument, year and
    revision (int64), how many closes it holds, and its days and closes — as Postgres sends them (bytes, big-endian)
    or as arrays (int32 days since 1970-01-01, int64 millionths: `native`). A chunk is a series row, or several whole
    kept rows of one instrument (_Spans)."""

    ids: np.ndarray
    years: np.ndarray
    revisions: np.ndarray
    counts: np.ndarray
    days: list
    micros: list
    native: bool


def _chunks_of_rows(rows: list[tuple]) -> _Chunks:
    """The rows as Postgres sends them, (instrument id, year, revision, days, micros) each, unordered, as _Chunks.
    Empties `rows` (each row's bytes then live only as long as the chunks)."""
    # Ordered here, not by the query: Postgres would sort the rows with their bytes (15 MB for 500
    # instruments × 10 years, past work_mem: a merge through temporary files, ~50 of the query's ~60 ms),
    # where sorting 5,000 tuples by their two keys costs ~1 ms. (instrument_id, year) is unique: no ties.
    rows.sort(key=itemgetter(0, 1))
    chunks = _Chunks(
        ids=np.fromiter((row[0] for row in rows), dtype="i8", count=len(rows)),
        years=np.fromiter((row[1] for row in rows), dtype="i8", count=len(rows)),
        revisions=np.fromiter((row[2] for row in rows), dtype="i8", count=len(rows)),
        counts=np.fromiter((len(row[3]) // 4 for row in rows), dtype="i8", count=len(rows)),
        days=[row[3] for row in rows], micros=[row[4] for row in rows], native=False)
    rows.clear()  # the caller's list too
    return chunks


def _decode(chunks: _Chunks, start: date, before: date | None) -> tuple[tuple, "_Rows", dict]:
    """The closes of the chunks; and per chunk, in (instrument id, year) order, its _Rows; and the chunks cut, whole,
    as arrays by revision. Empties the chunks' lists of days and closes."""
    if not len(chunks.ids):
        return (np.empty(0, "i8"), np.zeros(1, "i8"), np.empty(0, "i4"), np.empty(0, "i8")), \
            _Rows(*(np.empty(0, "i8"),) * 4, np.empty(0, bool)), {}
    chunk_ids, years, revisions, counts, native = chunks.ids, chunks.years, chunks.revisions, chunks.counts, \
        chunks.native
    width = 1 if native else 4
    # One run of chunks per instrument (its years in order).
    firsts = np.flatnonzero(np.concatenate([[True], chunk_ids[1:] != chunk_ids[:-1]]))
    run_of = np.repeat(np.arange(len(firsts)), np.diff(np.append(firsts, len(chunk_ids))))
    # Keep every close from `start` on (dated before `before`), and of the earlier ones only each
    # instrument's last: per run, rows lo .. hi-1 (dates ascending). (`before` ahead of `start`, which no
    # caller asks, would make the two ends cross: nothing is kept then.)
    early = _runs_add(_rows_before(chunks, start), firsts)
    lo = np.maximum(early - 1, 0)
    hi = np.maximum(_runs_add(_rows_before(chunks, before), firsts) if before else _runs_add(counts, firsts), lo)
    # The rows dropped are cut from the chunks' bytes before these are joined (only the chunks of
    # `start`'s and `before`'s years can lose rows): the joined arrays are the closes kept, with no
    # copies of 1.26 M rows through a mask.
    chunk_starts = np.cumsum(counts) - counts
    in_run = chunk_starts - chunk_starts[firsts][run_of]
    cut_lo = np.clip(lo[run_of] - in_run, 0, counts)
    cut_hi = np.clip(hi[run_of] - in_run, 0, counts)
    cut = np.flatnonzero((cut_lo > 0) | (cut_hi < counts))
    days_parts, micros_parts = chunks.days, chunks.micros
    # The rows cut, whole, by revision: kept with the read, they make it again with the next rows sent.
    # (Copies: a row cut from a kept read's arrays would keep all of them alive.)
    cut_rows = {int(revisions[k]): (days_parts[k].copy(), micros_parts[k].copy()) if native else
                _native(days_parts[k], micros_parts[k]) for k in cut.tolist()}
    for k, a, b in zip(cut.tolist(), cut_lo[cut].tolist(), cut_hi[cut].tolist(), strict=True):
        days_parts[k] = days_parts[k][width * a:width * b]
        micros_parts[k] = micros_parts[k][2 * width * a:2 * width * b] if width > 1 else micros_parts[k][a:b]
    kept = hi - lo
    rows = _Rows(chunk_ids, revisions, years, cut_hi - cut_lo, (cut_lo == 0) & (cut_hi == counts))
    runs_ids, runs_starts = chunk_ids[firsts][kept > 0], np.concatenate([[0], np.cumsum(kept[kept > 0])])
    if native:
        days, micros = np.concatenate(days_parts), np.concatenate(micros_parts)
        days_parts.clear()
        micros_parts.clear()
        return (runs_ids, runs_starts, days, micros), rows, cut_rows
    # Each array made once, straight from the joined bytes (big-endian, as Postgres sends them), and the
    # bytes let go before the next: a 10-year chart's closes are 15 MB of them.
    days_bytes = b"".join(days_parts)
    days_parts.clear()
    days = np.frombuffer(days_bytes, dtype=">i4").astype("i4")
    del days_bytes
    micros_bytes = b"".join(micros_parts)
    micros_parts.clear()
    micros = np.frombuffer(micros_bytes, dtype=">i8").astype("i8")
    del micros_bytes
    # One with no close left has no run.
    return (runs_ids, runs_starts, days, micros), rows, cut_rows


class _Rows(NamedTuple):
    """Per series row a read was made of, in (instrument, year) order: its instrument, revision and year, how many of
    its closes the read kept (in that order in its arrays) and whether that is all of them (the rows cut at the
    start and the end are not)."""

    ids: np.ndarray
    revisions: np.ndarray
    years: np.ndarray
    kept: np.ndarray
    whole: np.ndarray


def _native(days: bytes, micros: bytes) -> tuple[np.ndarray, np.ndarray]:
    """A series row's bytes, as sent, as arrays of int32 days since 1970-01-01 and int64 millionths."""
    return np.frombuffer(days, dtype=">i4").astype("i4"), np.frombuffer(micros, dtype=">i8").astype("i8")


def _rows_before(chunks: _Chunks, day: date) -> np.ndarray:
    """Per chunk, how many of its closes are dated before `day`: all of a year before `day`'s, none of a
    later one, and those of `day`'s year read from their days (a year's days each)."""
    years, counts = chunks.years, chunks.counts
    below = np.where(years < day.year, counts, 0)
    straddling = np.flatnonzero(years == day.year)
    if len(straddling):
        if chunks.native:
            dated_before = np.concatenate([chunks.days[k] for k in straddling.tolist()]) < (day - _EPOCH).days
        else:
            dated_before = np.frombuffer(b"".join(chunks.days[k] for k in straddling.tolist()),
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


# What a kept read costs beyond its arrays (objects, dictionary slots), and per row the text of its revision once
# sent (_Kept.held: up to 19 digits and a comma).
_MEMO_OVERHEAD = 256
_HELD_BYTES_PER_ROW = 20
# The series rows of the instruments asked for, from `year` on, and each one's newest year before it (its
# last close is the seed, carried into the first days: only it is sent, 12 bytes, not the year's 3 kB).
_ROWS_SQL = (
    "(SELECT {columns} FROM {table} WHERE instrument_id = ANY(%(ids)s::bigint[]) AND year >= %(year)s)"
    " UNION ALL (SELECT DISTINCT ON (instrument_id) {columns} FROM {table}"
    " WHERE instrument_id = ANY(%(ids)s::bigint[]) AND year < %(year)s ORDER BY instrument_id, year DESC)"
)
_SEED_DAYS = "substring(days FROM octet_length(days) - 3)"
_SEED_MICROS = "substring(micros FROM octet_length(micros) - 7)"
# A read keeping nothing: every row with its bytes.
_SERIES_SQL = (
    "(SELECT instrument_id, year, revision, days, micros FROM {table}"
    " WHERE instrument_id = ANY(%(ids)s::bigint[]) AND year >= %(year)s)"
    f" UNION ALL (SELECT DISTINCT ON (instrument_id) instrument_id, year, revision, {_SEED_DAYS}, {_SEED_MICROS}"
    " FROM {table} WHERE instrument_id = ANY(%(ids)s::bigint[]) AND year < %(year)s"
    " ORDER BY instrument_id, year DESC)"
)
# A kept read's one question, answered from the unique index alone but for the bytes sent (it holds each row's
# revision: migration prices/0010; an index-only scan, no row's page visited but those written since the last
# VACUUM): which rows are named now, and which of them are not held? One statement (one snapshot: the answer is
# whole whatever was written since): first how many rows are named and how many of those are new, then each new row
# with its bytes (fetched by its key: a join with the table would have Postgres hash it whole, bytes and all), and
# of a row before `year` only its last close, as _SERIES_SQL sends it. A regeneration the same day is sent the
# counts alone; after a new day's closes, this year's row of each instrument. The held revisions go as the text of
# an array (psycopg dumps a list of 5,000 ints element by element, ~3 ms each time), which Postgres hashes for
# `= ANY`.
_SERIES_NEW_SQL = (
    "WITH named AS MATERIALIZED (SELECT instrument_id, year, revision, NOT revision = ANY(%(held)s::bigint[]) AS new"
    " FROM (" + _ROWS_SQL.format(columns="instrument_id, year, revision", table="{table}") + ") AS rows)"
    " SELECT NULL::bigint, count(*)::int, count(*) FILTER (WHERE new), NULL::bytea, NULL::bytea FROM named"
    " UNION ALL SELECT named.instrument_id, named.year, named.revision,"
    " CASE WHEN named.year >= %(year)s THEN sent.days"
    " ELSE substring(sent.days FROM octet_length(sent.days) - 3) END,"
    " CASE WHEN named.year >= %(year)s THEN sent.micros"
    " ELSE substring(sent.micros FROM octet_length(sent.micros) - 7) END"
    # OFFSET 0 keeps the subquery a lookup per new row, not a join.
    " FROM named CROSS JOIN LATERAL (SELECT days, micros FROM {table} AS s"
    " WHERE s.instrument_id = named.instrument_id AND s.year = named.year OFFSET 0) AS sent WHERE named.new"
)


def _array_text(numbers) -> str:
    return "{" + ",".join(map(str, numbers)) + "}"


class _Kept:
    """One read kept: its arrays (read-only, handed out as they are), the day it ended before, and per
    series row it was made of (_Rows, in (instrument, year) order) where its closes are in the arrays; the rows not
    kept whole (cut at the start or the end), whole, as arrays."""

    __slots__ = ("arrays", "before", "rows", "offsets", "cut_rows", "size", "serial", "_held")

    def __init__(self, arrays: tuple, before: date | None, rows: _Rows,
                 cut_rows: dict[int, tuple[np.ndarray, np.ndarray]], serial: int) -> None:
        for array in arrays:
            array.flags.writeable = False
        self.arrays, self.before, self.rows, self.serial = arrays, before, rows, serial
        self.offsets = np.cumsum(rows.kept) - rows.kept
        self.cut_rows = cut_rows
        self._held: str | None = None
        self.size = (sum(array.nbytes for array in arrays) + rows.revisions.nbytes * 6 + _MEMO_OVERHEAD
                     + len(rows.revisions) * _HELD_BYTES_PER_ROW
                     + sum(days.nbytes + micros.nbytes for days, micros in cut_rows.values()))

    @property
    def held(self) -> str:
        """Its rows' revisions as the text of an array, as every later read sends them (made once: ~1 ms for 5,500)."""
        if self._held is None:
            self._held = _array_text(self.rows.revisions.tolist())
        return self._held


class _Spans:
    """Which series rows each chunk of a read made again holds (in (instrument, year) order): a chunk is
    one row, or several whole kept rows of one instrument whose closes follow each other in the kept
    arrays (the years between the start's and the end's: never cut)."""

    __slots__ = ("ids", "revisions", "years", "counts", "lengths")

    def __init__(self, ids: np.ndarray, revisions: np.ndarray, years: np.ndarray, counts: np.ndarray,
                 lengths: np.ndarray) -> None:
        self.ids, self.revisions, self.years, self.counts, self.lengths = ids, revisions, years, counts, lengths

    def rows_of(self, chunks: _Rows) -> _Rows:
        """Per row, its _Rows from the same per chunk (a chunk of several rows keeps all of each one's closes)."""
        several = np.repeat(self.lengths > 1, self.lengths)
        return _Rows(self.ids, self.revisions, self.years,
                     np.where(several, self.counts, np.repeat(chunks.kept, self.lengths)),
                     np.repeat(chunks.whole, self.lengths) | several)


class _Named(NamedTuple):
    """The rows a kept read is made again of, in (instrument, year) order: each one's instrument, year and revision,
    where it is among the kept read's rows (-1: sent), and the bytes of those sent, in the same order."""

    ids: np.ndarray
    years: np.ndarray
    revisions: np.ndarray
    at: np.ndarray
    sent: list[tuple[bytes, bytes]]


def _named_of(sent: list[tuple], memo: _Kept, *, named: int) -> _Named | None:
    """The rows named now, from the new rows sent (their bytes) and the kept read's (rows of the same instrument and
    year replaced), when Postgres named `named` rows in all; None when a kept row is no longer named (deleted): the
    new ones alone do not say which."""
    rows = memo.rows
    sent_ids = np.fromiter((row[0] for row in sent), dtype="i8", count=len(sent))
    sent_years = np.fromiter((row[1] for row in sent), dtype="i8", count=len(sent))
    # (instrument, year) is unique among the rows named: a sent row replaces the kept one of its key, if any.
    replaced = np.isin(rows.ids * 10_000 + rows.years, sent_ids * 10_000 + sent_years)
    kept = np.flatnonzero(~replaced)
    if len(kept) + len(sent) != named:
        return None
    ids = np.concatenate([rows.ids[kept], sent_ids])
    years = np.concatenate([rows.years[kept], sent_years])
    order = np.lexsort((years, ids))
    revisions = np.concatenate([rows.revisions[kept], np.fromiter((row[2] for row in sent), dtype="i8",
                                                                   count=len(sent))])[order]
    at = np.concatenate([kept, np.full(len(sent), -1)])[order]
    position = np.argsort(order)[len(kept):]  # where each sent row goes
    by_position = sorted(zip(position.tolist(), sent, strict=True), key=itemgetter(0))
    return _Named(ids[order], years[order], revisions, at, [(row[3], row[4]) for _, row in by_position])


def _remade_chunks(named: _Named, memo: _Kept, start: date, before: date | None) -> tuple[_Chunks, _Spans]:
    """The chunks of a read made again from the rows named: a row sent as arrays, a cut row as kept whole; and each
    instrument's whole kept rows between the start's year and the end's as one slice of the kept arrays (a new day
    changes only this year's row: 3 or 4 chunks per instrument, not one per year; 1,500 arrays made and joined
    instead of 5,500 for 500 instruments × 11 years). In (instrument, year) order, as the rows named are."""
    ids, years, revisions, at = named.ids, named.years, named.revisions, named.at
    count = len(ids)
    sent = at < 0
    kept_at = np.where(sent, 0, at)  # a sent row's own figures are not read from the kept ones
    offsets, counts = memo.offsets[kept_at], memo.rows.kept[kept_at]
    inner = ~sent & memo.rows.whole[kept_at] & (years > start.year)
    if before is not None:
        inner &= years < before.year
    joins = np.zeros(count, dtype=bool)
    joins[1:] = inner[1:] & inner[:-1] & (ids[1:] == ids[:-1]) & (offsets[1:] == offsets[:-1] + counts[:-1])
    heads = np.flatnonzero(~joins)
    lengths = np.diff(np.append(heads, count))
    ends = (offsets + counts)[np.append(heads[1:], count) - 1]
    # The rows sent, made arrays together (one conversion, not two per row), each one's a slice of them.
    sent_counts = np.array([len(days) // 4 for days, _ in named.sent], dtype="i8")
    sent_days, sent_micros = _native(b"".join(days for days, _ in named.sent),
                                     b"".join(micros for _, micros in named.sent))
    sent_at = dict(zip(np.flatnonzero(sent).tolist(), zip((np.cumsum(sent_counts) - sent_counts).tolist(),
                                                          sent_counts.tolist(), strict=True), strict=True))
    days_kept, micros_kept, cut_rows = memo.arrays[2], memo.arrays[3], memo.cut_rows
    head_revisions = revisions[heads]
    days_parts, micros_parts = [], []
    for k, revision, offset, end in zip(heads.tolist(), head_revisions.tolist(), offsets[heads].tolist(),
                                        ends.tolist(), strict=True):
        if (found := sent_at.get(k)) is not None:
            a, n = found
            days, micros = sent_days[a:a + n], sent_micros[a:a + n]
        elif revision in cut_rows:
            days, micros = cut_rows[revision]
        else:
            days, micros = days_kept[offset:end], micros_kept[offset:end]
        days_parts.append(days)
        micros_parts.append(micros)
    chunks = _Chunks(ids=ids[heads], years=years[heads], revisions=head_revisions,
                     counts=np.fromiter(map(len, days_parts), dtype="i8", count=len(days_parts)),
                     days=days_parts, micros=micros_parts, native=True)
    return chunks, _Spans(ids, revisions, years, counts, lengths)


def _changed_from(named: _Named, memo: _Kept, before: date | None) -> date | None:
    """The first day whose closes a read made again from `memo` and the rows named may have other than `memo`'s:
    1 January of the earliest year among the rows sent (new or written since) and, when the read ends elsewhere than
    `memo`'s, the years of either end. (Every kept row not sent is still named: _named_of.)"""
    years = named.years[named.at < 0].tolist()
    if memo.before != before:
        years += [end.year for end in (memo.before, before) if end is not None]
    return date(min(years), 1, 1) if years else None


class _SeriesCache:
    """The close histories this process read, kept for its next reads of the same instruments from the same
    start, the least recently read dropped first beyond PRICE_SERIES_CACHE_MB.

    A 10-year chart of 500 holdings reads 15 MB of series rows, all of which but this year's never change.
    Every row carries a revision the database gives each write of it (migration prices/0009: a sequence,
    never handed out twice, whoever writes and even if the write rolls back). A read sends Postgres the
    revisions of the rows its kept read was made of and asks, in one statement (one snapshot, whole by
    itself) answered from the unique index alone but for the rows sent (it holds the revisions: migration
    prices/0010), how many rows are named now and which of them have a revision not held, sent with their
    bytes. None new and as many as held (revisions are unique: the same rows): the kept arrays are the
    answer, handed out as they are (the generation's own arrays: no copy, no decoding). Otherwise (after a
    new day's closes: this year's row of each instrument) each new row replaces the kept one of its
    instrument and year, and when the kept rows left and the new ones are as many as the rows named (every
    other kept row is still named), the read is made again from them, exactly as from a whole answer; when
    they are fewer (a kept row deleted: an instrument's closes deleted, TRUNCATE of the price rows, which
    empties the series), it is read whole. A row kept is used only when Postgres has just counted it among
    the rows named with a held revision, so no write can be missed: a re-packed year has a new revision, a
    deleted one is missing from the count. The database is recognised by its connection settings
    and the oids of the series table and of the revision sequence, so a process forgets what it kept when
    it finds either made again (a restore, a migration undone and redone) or the sequence set back to a
    revision it has seen (a data-only restore's setval), and keeps no read while the rows carry revisions
    the sequence is yet to hand out or two share one; one set back and advanced past that between two
    reads cannot be told apart, hence: restart the chart workers after a restore (docs/operations.md)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.serials = itertools.count(1)  # each kept read's name (SeriesLineage), never given twice in a process
        self.clear()

    def clear(self) -> None:
        self.kept: OrderedDict[tuple, _Kept] = OrderedDict()  # least recently read first
        self.total = 0
        self.identity: tuple | None = None
        self.highest = 0  # the highest revision any read of this process has named
        self.last_sent = (0, 0)  # the last read's rows Postgres sent the bytes of, and those bytes

    def load(self, *, instrument_ids: list[int], start: date, before: date | None) -> tuple[tuple, SeriesLineage]:
        limit = int(settings.PRICE_SERIES_CACHE_MB * 1024 * 1024)
        ids = list(instrument_ids)
        key = (tuple(ids), start)
        identity, upcoming = self._identity() if limit > 0 else (None, 0)
        with self.lock:
            # The revision sequence set back (a data-only restore's setval, a migration undone and done again):
            # a revision kept may be handed out again for other bytes.
            if identity is None or identity != self.identity or upcoming <= self.highest:
                self.clear()
                self.identity = identity
            memo = self.kept.get(key)
        table = PriceSeries._meta.db_table
        params = {"ids": _array_text(ids), "year": start.year}
        named = None
        if memo is not None:
            params["held"] = memo.held
            rows = _fetch_binary(_SERIES_NEW_SQL.format(table=table), params)
            (_, count, new, _, _), = (row for row in rows if row[0] is None)
            rows = [row for row in rows if row[0] is not None]
            self.last_sent = (new, sum(len(row[3]) + len(row[4]) for row in rows))
            if not new and count == len(memo.rows.revisions) and memo.before == before:
                with self.lock:
                    if key in self.kept:
                        self.kept.move_to_end(key)
                return memo.arrays, SeriesLineage(memo.serial, memo.serial)
            named = _named_of(rows, memo, named=count)
            if named is None:  # a kept row deleted: the read is made whole
                memo = None
            elif not len(named.revisions):
                named = None  # nothing named: made as from an empty answer
            elif (named.at >= 0).any():
                highest = int(named.revisions.max())
            else:
                named = None  # every row sent: made as from a whole answer
        if memo is None:
            rows = _fetch_binary(_SERIES_SQL.format(table=table), params)
            self.last_sent = (len(rows), sum(len(row[3]) + len(row[4]) for row in rows))
        if named is None:
            highest = max((row[2] for row in rows), default=0)
        with self.lock:
            self.highest = max(self.highest, highest)
        spans, previous, changed_from = None, None, None
        if named is not None:
            previous, changed_from = memo.serial, _changed_from(named, memo, before)
            # Made again from the rows kept and those sent, all as arrays: the same decoding as of a whole
            # answer, on arrays.
            chunks, spans = _remade_chunks(named, memo, start, before)
        else:
            chunks = _chunks_of_rows(rows)
        # Made again below: the old one let go of first (its arrays, 15 MB for 500 × 10 years, live on only
        # as long as the rows made again from them).
        with self.lock:
            old = self.kept.pop(key, None)
            if old is not None:
                self.total -= old.size
        del memo, old, rows, named
        arrays, rows, cut_rows = _decode(chunks, start, before)
        if spans is not None:
            rows = spans.rows_of(rows)
        # Not kept while the sequence is behind the rows (set back: their revisions are yet to be handed out
        # again, to other bytes), nor when two rows share a revision (handed out twice since a set-back): a
        # kept read's rows are told apart by their revisions.
        if identity is None or highest >= upcoming or len(np.unique(rows.revisions)) != len(rows.revisions):
            return arrays, SeriesLineage(None, previous, changed_from)
        memo = _Kept(arrays, before, rows, cut_rows, serial=next(self.serials))
        with self.lock:
            if identity == self.identity:
                old = self.kept.pop(key, None)
                if old is not None:
                    self.total -= old.size
                self.kept[key] = memo
                self.total += memo.size
                while self.total > limit and self.kept:
                    _, dropped = self.kept.popitem(last=False)
                    self.total -= dropped.size
        return arrays, SeriesLineage(memo.serial, previous, changed_from)

    @staticmethod
    def _identity() -> tuple[tuple, int]:
        """Which database and series this process reads (its settings, the table's and the revision
        sequence's oids: both are new when made again), and the next revision the sequence will hand out."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT %s::regclass::oid, %s::regclass::oid, last_value, is_called"
                           f" FROM {_REVISION_SEQUENCE}", [PriceSeries._meta.db_table, _REVISION_SEQUENCE])
            table, sequence, last, called = cursor.fetchone()
        config = connection.settings_dict
        return (config["NAME"], config["HOST"], config["PORT"], table, sequence), last + 1 if called else last


_REVISION_SEQUENCE = "prices_priceseries_revision_seq"  # migration prices/0009


_SERIES_CACHE = _SeriesCache()
# A process forked while another thread held the lock would never see it released.
os.register_at_fork(after_in_child=lambda: setattr(_SERIES_CACHE, "lock", threading.Lock()))


def price_series_cache_clear() -> None:
    """Forget the reads this process kept (the bench's cold read; tests)."""
    with _SERIES_CACHE.lock:
        _SERIES_CACHE.clear()


def price_series_cache_stats() -> dict:
    """What this process keeps (reads, the instruments with closes in them and their ids, bytes), and what
    its last read was sent (rows, bytes)."""
    with _SERIES_CACHE.lock:
        return {"reads": len(_SERIES_CACHE.kept),
                "instruments": sum(len(memo.arrays[0]) for memo in _SERIES_CACHE.kept.values()),
                "instrument_ids": sorted({iid for memo in _SERIES_CACHE.kept.values()
                                          for iid in memo.arrays[0].tolist()}),
                "bytes": _SERIES_CACHE.total,
                "last_sent_rows": _SERIES_CACHE.last_sent[0], "last_sent_bytes": _SERIES_CACHE.last_sent[1]}
