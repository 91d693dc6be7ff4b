"""The exact valuations each chart worker process made last, and the book they were made from (the replayed
transactions: charts.compute.Book), kept for its next generation of the same portfolio.

A generation values ~17 days of a portfolio exactly, in Decimal (charts.compute._Valuer: today, the performance
ranges' bases, every 31 December): ~1.2 ms each for 500 holdings, a fifth of the generation. Most of those days'
inputs do not change from one generation to the next: after a new day's closes, only today and the bases that move
with it (1D, 1Y, 5Y) have other closes. Each valuation is kept with everything it was computed from, and reused only
when the next generation hands it exactly the same inputs (KnownValuations, compared in full: a trade changes the
replayed positions every day shares, so nothing is reused after one). What they were computed from is kept as
digests (charts.compute.inputs_digest), so a portfolio's kept valuations weigh what its snapshots weigh, however many
transactions it has. The book is kept whole (the next generation compares the transactions it loads with those
replayed, and takes the replay again when they are the same: a new day's closes leave them so), so it weighs what
the transactions do: ~1.7 kB each. The transactions as loaded are kept with it (the same rows), and the next load
takes them again while the portfolio's replay version reads the same (portfolio/cash.py
portfolio_transactions_reload): a new day's generation reads no transaction. The value grid is kept too
(charts.compute.KeptGrid: its per-day arrays, ~60 kB for 10 years), so the next generation makes only the days
from the first whose inputs changed. Least recently made
dropped first beyond CHART_KEPT_VALUATIONS_MB; per process (a prefork worker of N children keeps up to N times that).
"""

from __future__ import annotations

from charts.compute import KnownValuations
from charts.performance import past_ranges_kept
from core.kept_bytes import KeptBytes

# What a generation's kept valuations take: per position of a day (its PositionValue, Decimals and observation, and
# its share of the snapshot's dict: ~490 bytes, measured with tracemalloc on the bench portfolio's valuations, 500
# holdings × 16 days), per day (its snapshot, totals and digest) and per portfolio (the digest of what every day
# shares, the dicts). Never 0: a portfolio holding nothing on any day valued is counted too.
BYTES_PER_POSITION = 500
BYTES_PER_DAY = 1000
BYTES_PER_PORTFOLIO = 1000
# What the book keeps per transaction: the loaded row (~600 bytes: the whole load, its lists and 501 instruments
# included, is 1.8 MB for 3,246 rows, and the load kept beside the book is made of the same rows) and what its
# replay made of it (the state after it, its amounts and effect, its trade observation: ~740 bytes), measured with
# tracemalloc on the bench portfolio's 3,246 (its cash's trades included), and the performance's totals of its
# flows kept with the book
# (Book.made: ~200 bytes each) and of its invested line (its running totals at each day the line moves, ~60 bytes
# per transaction: 187 kB for the bench portfolio's 3,246); and per day, the invested line (a list slot and a float).
BYTES_PER_TRANSACTION = 1700
BYTES_PER_DAY_OF_BOOK = 16
# The figures of a range that ended before today, kept with the book for the next generation measuring it from the
# same inputs (charts.performance: a calendar year's; 1,520 bytes each, its digest included, measured with tracemalloc
# on the bench portfolio's ten years).
BYTES_PER_PAST_RANGE = 1800
# The load's own rows of the cash types (a deposit, a withdrawal, interest...) are the one part of it the book does
# not hold (it holds the cash trades they were expanded to): a loaded row each (review r32).
BYTES_PER_LOADED_ROW = 600

_KEPT = KeptBytes(setting="CHART_KEPT_VALUATIONS_MB", min_bytes=0)


def valuations_kept_get(*, portfolio_id: int) -> KnownValuations | None:
    """The valuations this process's last generation of the portfolio made, if it keeps them."""
    found = _KEPT.get(portfolio_id)
    return None if found is None else found[1]


def valuations_kept_put(*, portfolio_id: int, valuations: KnownValuations) -> None:
    """Keep a generation's valuations for the next one (nothing when CHART_KEPT_VALUATIONS_MB is 0)."""
    _KEPT.put(portfolio_id, b"", valuations, size=valuations_size(valuations))


def valuations_size(valuations: KnownValuations) -> int:
    """The memory a generation's kept valuations are counted for."""
    book, grid, loaded = valuations.book, valuations.grid, valuations.loaded
    return (valuations.positions * BYTES_PER_POSITION + len(valuations.by_date) * BYTES_PER_DAY
            + BYTES_PER_PORTFOLIO + (0 if book is None else len(book.transactions) * BYTES_PER_TRANSACTION
                                     + len(book.invested) * BYTES_PER_DAY_OF_BOOK
                                     + past_ranges_kept(book) * BYTES_PER_PAST_RANGE)
            + (0 if grid is None else grid.nbytes)
            + (0 if loaded is None else _cash_type_rows(loaded.own) * BYTES_PER_LOADED_ROW))


def _cash_type_rows(own: list) -> int:
    """How many of a load's own rows are of the cash types (they name no instrument)."""
    return sum(1 for row in own if row.instrument_id is None)


def valuations_kept_clear() -> None:
    """Forget every kept valuation (the bench's cold generation; tests)."""
    _KEPT.clear()
