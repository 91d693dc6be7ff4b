"""Instruments' close histories read whole from their packed series (prices.PriceSeries), Postgres only.

A chart of 500 holdings × 10 years needs 1.26 M closes. As rows, Postgres aggregates them on every
generation (about half of its time), although all but today's never change. The series hold the same
closes packed one calendar year per row, kept exact by the database's own triggers in the transaction
that writes the prices (migration prices/0004): reading them is ~5,000 rows of binary strings that numpy
reads whole. Closes are the stored (unadjusted) ones, as whole millionths: exact.
"""

from datetime import date

import numpy as np
from django.db import connection

from prices.models import PriceSeries

_EPOCH = np.datetime64("1970-01-01", "D")


def price_series_available() -> bool:
    """The series are kept (by triggers) on Postgres only."""
    return connection.vendor == "postgresql"


def price_series_load(*, instrument_ids: list[int], start: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(instrument ids, dates, closes in millionths) sorted by (instrument id, date): every close from
    `start` on, plus each instrument's last close before `start` (carried into the first days)."""
    table = PriceSeries._meta.db_table
    sql = (
        f"(SELECT instrument_id, year, days, micros FROM {table}"
        " WHERE instrument_id = ANY(%(ids)s) AND year >= %(year)s)"
        # The newest year before `start`'s of each instrument: its last close is the seed.
        f" UNION ALL (SELECT DISTINCT ON (instrument_id) instrument_id, year, days, micros FROM {table}"
        " WHERE instrument_id = ANY(%(ids)s) AND year < %(year)s ORDER BY instrument_id, year DESC)"
        " ORDER BY instrument_id, year"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"ids": list(instrument_ids), "year": start.year})
        chunks = cursor.fetchall()
    counts = np.array([len(days) // 4 for _, _, days, _ in chunks], dtype="i8")
    ids = np.repeat(np.array([row[0] for row in chunks], dtype="i8"), counts)
    days = _EPOCH + np.frombuffer(b"".join(row[2] for row in chunks), dtype=">i4").astype("i8")
    micros = np.frombuffer(b"".join(row[3] for row in chunks), dtype=">i8").astype("i8")
    # Keep every close from `start` on, and of the earlier ones only each instrument's last.
    after = days >= np.datetime64(start, "D")
    last_of_instrument = np.ones(len(ids), dtype=bool)
    last_of_instrument[:-1] = ids[1:] != ids[:-1]
    next_after = np.ones(len(ids), dtype=bool)
    next_after[:-1] = after[1:]
    keep = after | last_of_instrument | next_after
    return ids[keep], days[keep], micros[keep]
