"""Benchmark 4: the price-history queries the product runs, with and without the indexes.

The SQL is captured from the product's own code — every read of price history it runs on a hot path
(the module and function of each are listed in PRODUCT_READS and in the report), nothing written for
the bench — then run under EXPLAIN (ANALYZE, BUFFERS) on Postgres: once as the schema has it, once
inside a transaction that drops the indexes of prices_pricehistory and of its two mirrors (the packed
series, prices_priceseries, which charts read; the latest closes, prices_latestclose, which valuations
read) and is rolled back afterwards
(transactional DDL: nothing is ever left dropped, and only the bench's own database is touched).

Queries that run one index walk per instrument (correlated subqueries) turn into one full scan per
instrument without the index; those are measured without it on a few instruments and extrapolated
linearly to all of them (each instrument costs one more scan), as the report says.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from bench.env import DATABASE_URL

TABLE = "prices_pricehistory"
# Charts read each instrument's closes packed a year per row (prices/series.py), not the rows above.
SERIES_TABLE = "prices_priceseries"
# Valuations read each instrument's two newest closes from their mirror, a row per instrument (prices.LatestClose).
LATEST_TABLE = "prices_latestclose"
TABLES = (TABLE, SERIES_TABLE, LATEST_TABLE)
REPEATS = 3
DROP_INDEXES = [
    f"ALTER TABLE {TABLE} DROP CONSTRAINT pricehistory_instrument_date_uniq",
    f"ALTER TABLE {SERIES_TABLE} DROP CONSTRAINT priceseries_instrument_year_uniq",
    f"ALTER TABLE {LATEST_TABLE} DROP CONSTRAINT {LATEST_TABLE}_pkey",
]


@dataclass(frozen=True)
class QuerySpec:
    name: str
    what: str
    runs_in: str  # the product function whose SQL this is
    capture: Callable[[list[int]], None]  # runs the product's code for these instrument ids
    pick: Callable[[str], bool]  # which captured statement is the price-history read
    per_instrument: bool  # cost grows with one scan per instrument without the index
    expects_index: bool  # a hot read the design says must hit an index
    table: str = TABLE  # the table whose read this is


def _captured(spec: QuerySpec, ids: list[int]) -> str:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        spec.capture(ids)
    statements = [q["sql"] for q in context.captured_queries if spec.table in q["sql"] and spec.pick(q["sql"])]
    if not statements:
        raise RuntimeError(f"{spec.name}: no statement on {spec.table} captured")
    return statements[0]


def _scans(plan: dict) -> list[str]:
    """The plan's scan nodes on the price-history table, e.g. 'Index Only Scan (pricehistory_…)', of those that ran (a
    lookup of rows none of which were asked for, as of the new series rows when none is new, never runs)."""
    if plan.get("Actual Loops") == 0:
        return []
    found = []
    if plan.get("Relation Name") in TABLES or plan.get("Index Name", "").startswith(
            ("pricehistory", "priceseries", LATEST_TABLE)):
        index = plan.get("Index Name")
        found.append(f"{plan['Node Type']}" + (f" ({index})" if index else ""))
    for child in plan.get("Plans", []):
        found += _scans(child)
    return found


def _explain(cursor: psycopg.Cursor, sql: str) -> dict:
    times, plan = [], None
    cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")  # warms the cache, as a hot read is
    for _ in range(REPEATS):
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
        document = (json.loads(raw) if isinstance(raw, str) else raw)[0]
        times.append(document["Execution Time"])
        plan = document["Plan"]
    return {"ms": round(statistics.median(times), 3), "scans": sorted(set(_scans(plan)))}


def _specs(data) -> list[QuerySpec]:
    from charts.selectors import _prices_load
    from prices.models import Instrument
    from prices.plausibility import _last_closes
    from prices.selectors import instruments_with_latest_get, price_history_get
    from prices.series import price_series_cache_clear

    last = data.last_date
    first = data.first_date

    def chart_series_cold(ids: list[int]) -> None:
        # The read of a worker keeping none of these closes (a fresh one, or after they changed): every row
        # sent. (A worker that kept them asks which changed: chart_series_kept.)
        price_series_cache_clear()
        _prices_load(instrument_ids=ids, start=first, before=None)

    def chart_series_kept(ids: list[int]) -> None:
        # The read of a worker that kept them, nothing changed since (a chart made again the same day): its
        # question, answered from the index alone, no row sent (the second read below; the first keeps them).
        price_series_cache_clear()
        _prices_load(instrument_ids=ids, start=first, before=None)
        _prices_load(instrument_ids=ids, start=first, before=None)

    def chart_series_new_day(ids: list[int]) -> None:
        # The read of a worker that kept them, after a new day's closes re-packed this year's row of each (here
        # rewritten as they are: a new revision, the same closes): its question names the rows from the index and
        # fetches each new row's bytes by its key.
        from django.db import connection

        price_series_cache_clear()
        _prices_load(instrument_ids=ids, start=first, before=None)
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {SERIES_TABLE} SET days = days WHERE instrument_id = ANY(%s) AND year = %s",
                           [ids, last.year])
        _prices_load(instrument_ids=ids, start=first, before=None)
        with connection.cursor() as cursor:  # the rewritten rows' dead versions gone, as autovacuum leaves them
            cursor.execute(f"VACUUM ANALYZE {SERIES_TABLE}")

    def history(ids: list[int]) -> None:
        price_history_get(instrument=Instrument.objects.get(pk=ids[0]), start=last - timedelta(days=365), end=last)

    return [
        # Not a walk of price history any more: a row per instrument by primary key, which Postgres rightly
        # hashes whole when a portfolio holds most of the instruments stored (as the bench's does).
        QuerySpec("latest_close", "latest and previous close of every holding, with the instruments (dashboard "
                  "valuation), from their mirror (prices.LatestClose)",
                  "prices/selectors.py instruments_with_latest_get", lambda ids: instruments_with_latest_get(ids=ids),
                  lambda sql: True, False, False, table=LATEST_TABLE),
        QuerySpec("history_range", "one instrument's closes over a year (instrument page, prices API)",
                  "prices/selectors.py price_history_get", history, lambda sql: True, False, True),
        QuerySpec("last_close_check", "each quoted instrument's last close (plausibility check of every "
                  "refresh batch)", "prices/plausibility.py _last_closes", lambda ids: _last_closes(ids),
                  lambda sql: True, True, True),
        QuerySpec("chart_series", "every holding's packed closes since the first transaction, and the year "
                  "before it (chart inputs)", "prices/series.py price_series_runs_load",
                  chart_series_cold, lambda sql: "UNION ALL" in sql, False, True, table=SERIES_TABLE),
        # A lookup by key per new row: without the index, a scan of the whole table for each. Captured before the
        # question of the same day below, whose revisions are then those it rewrote: nothing changes after it.
        QuerySpec("chart_series_new_day", "which of those packed closes changed since a worker kept them, after a "
                  "new day's closes: this year's of every holding, fetched by key and sent (chart inputs, a new day)",
                  "prices/series.py price_series_runs_load",
                  chart_series_new_day, lambda sql: "count(*) FILTER" in sql, True, True, table=SERIES_TABLE),
        QuerySpec("chart_series_kept", "which of those packed closes changed since a worker kept them "
                  "(chart inputs, made again the same day: none)", "prices/series.py price_series_runs_load",
                  chart_series_kept, lambda sql: "count(*) FILTER" in sql, False, True, table=SERIES_TABLE),
    ]


def run(*, data, subset: int) -> dict:
    from prices.models import Instrument

    ids = list(Instrument.objects.filter(symbol__startswith="DASH").order_by("pk").values_list("pk", flat=True))
    specs = _specs(data)
    statements = {spec.name: (_captured(spec, ids), _captured(spec, ids[:subset]) if spec.per_instrument else None)
                  for spec in specs}
    results = {}
    with psycopg.connect(DATABASE_URL) as conn, conn.cursor() as cursor:
        cursor.execute("SET statement_timeout = '120s'")
        for spec in specs:
            results[spec.name] = {"what": spec.what, "runs_in": spec.runs_in,
                                  "with_index": _explain(cursor, statements[spec.name][0]),
                                  "expects_index": spec.expects_index}
        conn.commit()
        # Without the indexes: dropped in a transaction that is always rolled back.
        try:
            for statement in DROP_INDEXES:
                cursor.execute(statement)
            for spec in specs:
                full, small = statements[spec.name]
                measured = _explain(cursor, small or full)
                scale = len(ids) / subset if small else 1.0
                results[spec.name]["without_index"] = {
                    **measured, "ms": round(measured["ms"] * scale, 3), "measured_ms": measured["ms"],
                    "extrapolated_from": subset if small else None,
                }
        finally:
            conn.rollback()
    for entry in results.values():
        entry["ratio"] = round(entry["without_index"]["ms"] / max(entry["with_index"]["ms"], 0.001), 1)
        entry["index_used"] = any("Index" in scan for scan in entry["with_index"]["scans"])
    return {"instruments": len(ids), "subset": subset, "price_rows": data.price_rows, "queries": results,
            "indexes": _indexes()}


def _indexes() -> list[str]:
    """The indexes price history and its mirrors have, as the schema reads now (the report lists them)."""
    with psycopg.connect(DATABASE_URL) as conn:
        rows = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = ANY(%s) ORDER BY 1",
                            [list(TABLES)]).fetchall()
    return [row[0] for row in rows]
