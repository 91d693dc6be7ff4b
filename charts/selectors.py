"""Everything the chart computation needs for one portfolio, loaded in a constant number of queries.

A constant number of queries whatever the number of holdings: the transactions, their instruments, the
closes from the first transaction on with each instrument's last close before it (so the first days carry a close
forward too), and — only when some currency differs from the base — the FX rates from that date on plus
the last rate of each pair before it.

Closes are the bulk (a 500-holding, 10-year portfolio has ~1.26 M). They never become model instances or
Decimals: they are whole millionths (the stored precision, so exact) as 64-bit integers. On Postgres they
come from the instruments' packed series (prices.series: ~5,000 rows of binary strings numpy reads whole,
kept by the database in the transaction that writes the prices); elsewhere (SQLite) the database scales
the rows and plain value tuples stream into numpy (two queries: the closes, and the last one before).
The few closes a Decimal figure needs are made exact Decimals from those integers (charts.compute).
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np
from django.db import connection
from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet, Subquery, Value, Window
from django.db.models.functions import Cast, Least, Round, RowNumber
from django.utils import timezone

from portfolio.cash import PortfolioTransactions, portfolio_transactions_reload
from portfolio.holdings import TransactionRow
from portfolio.models import Portfolio
from portfolio.ranges import SPARKLINE_MONTHS, months_before
from prices.fx import currency_major
from prices.models import FxRate, Instrument, PriceHistory
from prices.selectors import InstrumentRow
from prices.series import SeriesLineage, day_numbers, price_series_available, price_series_runs_read

# Rows per fetch on the portable price path: bounds the rows held as Python tuples at any moment.
PRICE_FETCH_BATCH = 20_000

# Closes are stored with 6 decimals: as whole millionths they are exact integers.
MICROS_PER_UNIT = 1_000_000
# A close above 9 × 10^12 (nothing real) is clamped so that its millionths fit in 64 bits: one absurd
# stored price never makes a whole chart fail. (Clamping from above only costs nothing measurable; a
# close below −9 × 10^12 is not clamped.)
CLOSE_LIMIT = Decimal("9000000000000")


def close_micros() -> Cast:
    """The close as whole millionths, computed by the database."""
    scaled = Least(F("close"), Value(CLOSE_LIMIT)) * MICROS_PER_UNIT
    # Postgres's numeric is exact, so the product is already whole. SQLite keeps decimals as doubles: its
    # product may fall a hair short of the whole number, which CAST would truncate.
    return Cast(scaled if connection.vendor == "postgresql" else Round(scaled), BigIntegerField())


@dataclass(frozen=True)
class FxSeries:
    """How many base-currency units one unit of a currency is worth, from each date on (dates ascending).

    A currency with the base's major currency (USD in a USD portfolio, GBp in a GBP one) is a fixed factor
    holding from `date.min`; a pair with no stored rate has no dates at all (never converted at 1).
    """

    dates: np.ndarray  # datetime64[D]
    rates: tuple[Decimal, ...]


@dataclass(frozen=True)
class PriceRows:
    """Daily closes as parallel arrays sorted by (instrument_id, date), each instrument's last close before
    the first transaction included. The rows of one instrument are one run: its id is kept once, with
    where its run starts (an id per row would be 10 MB for a 10-year, 500-holding chart)."""

    instruments: np.ndarray  # int64: the instruments with closes, ascending
    starts: np.ndarray  # int64: where each one's rows start, then the number of rows
    days: np.ndarray  # int32: days since 1970-01-01 (half a datetime64's 8 bytes: 5 MB less kept for 1.26 M closes)
    micros: np.ndarray  # int64: the closes exactly, in millionths (Decimal figures are made from these)
    # What a read of the packed series was made from (an earlier read of this process, the days it left as they
    # were): None for closes read otherwise.
    lineage: SeriesLineage | None = None

    @classmethod
    def of(cls, instrument_ids: np.ndarray, days: np.ndarray, micros: np.ndarray) -> "PriceRows":
        """From an instrument id per row (sorted), and the rows' days since 1970-01-01."""
        changes = np.flatnonzero(instrument_ids[1:] != instrument_ids[:-1]) + 1
        starts = np.concatenate([[0] if len(instrument_ids) else [], changes, [len(instrument_ids)]]).astype("i8")
        return cls(instrument_ids[starts[:-1]], starts, days, micros)

    @classmethod
    def empty(cls) -> "PriceRows":
        return cls.of(np.empty(0, "i8"), np.empty(0, "i4"), np.empty(0, "i8"))

    @property
    def instrument_ids(self) -> np.ndarray:
        """The instrument id of each row."""
        return np.repeat(self.instruments, np.diff(self.starts))

    def rows_of(self, instrument_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first row, row after the last) of each of these instruments; an empty run for one without closes."""
        at = np.searchsorted(self.instruments, instrument_ids)
        lo = self.starts[at]
        # One without closes falls between two runs (or after the last): it ends where it starts.
        known = np.isin(instrument_ids, self.instruments)
        return lo, np.where(known, self.starts[np.minimum(at + 1, len(self.starts) - 1)], lo)

    @property
    def closes(self) -> np.ndarray:
        """The closes as float64, in the instrument's own currency (the daily value grid sums millions of
        them): made when asked, not kept beside the millionths (10 MB for a 10-year, 500-holding chart)."""
        return self.closes_of(slice(None))

    def closes_of(self, rows: np.ndarray | slice) -> np.ndarray:
        # micros < 2^53 are exact doubles, so this division is correctly rounded: the same float the
        # database's own numeric-to-float8 cast would give.
        return self.micros[rows] / MICROS_PER_UNIT

    def before(self, day: date | None) -> "PriceRows":
        """The closes dated before `day` (all of them for None)."""
        if day is None:
            return self
        keep = self.days < day_numbers(day)
        return PriceRows.of(self.instrument_ids[keep], self.days[keep], self.micros[keep])


@dataclass(frozen=True)
class ChartInputs:
    base_currency: str
    # Ordered (date, id): the portfolio's own and its cash's trades (portfolio/cash.py), as value tuples.
    transactions: list[TransactionRow]
    instruments: dict[int, InstrumentRow]  # every instrument the portfolio ever traded
    prices: PriceRows = field(default_factory=lambda: PriceRows.empty())
    # The closes of the sparklines' window (the last SPARKLINE_MONTHS) when it begins before the first transaction:
    # `prices` start there, and a portfolio a week old would draw a week of each instrument's line.
    recent_prices: PriceRows | None = None
    # Currency code as written on instruments and transactions (GBp included) -> conversion to the base.
    fx: dict[str, FxSeries] = field(default_factory=dict)
    # What `transactions` and `instruments` were loaded as, for the worker's next load of the portfolio (its `kept`).
    loaded: PortfolioTransactions | None = None


def chart_inputs_load(*, portfolio: Portfolio, closes_before: date | None = None,
                      kept: PortfolioTransactions | None = None) -> ChartInputs:
    """`closes_before`: leave out closes dated on or after it (the generation's history ends with the
    last completed session: today's closes are live, charts.live adds them when a chart is read). `kept`: the
    transactions an earlier load of the portfolio gave (its `loaded`), taken again while nothing they were read
    from has changed (portfolio_transactions_reload)."""
    loaded = portfolio_transactions_reload(portfolio_id=portfolio.pk, kept=kept)
    transactions, instruments = loaded.transactions, loaded.instruments
    base = portfolio.base_currency
    if not transactions:
        return ChartInputs(base_currency=base, transactions=[], instruments={}, loaded=loaded)
    first = transactions[0].date
    codes = {i.currency for i in instruments.values()} | {tx.currency for tx in transactions}
    window = months_before(closes_before or timezone.localdate(), SPARKLINE_MONTHS)
    return ChartInputs(
        base_currency=base,
        transactions=transactions,
        instruments=instruments,
        prices=_prices_load(instrument_ids=sorted(instruments), start=first, before=closes_before),
        recent_prices=(_price_history_load(instrument_ids=sorted(instruments), start=window, before=closes_before)
                       if window < first else None),
        fx=_fx_load(codes=codes, base=base, start=first),
        loaded=loaded,
    )


def _prices_load(*, instrument_ids: list[int], start: date, before: date | None) -> PriceRows:
    """Closes from `start` on (dated before `before`, when given) plus each instrument's last one before
    `start`, sorted (instrument_id, date)."""
    if price_series_available():
        arrays, lineage = price_series_runs_read(instrument_ids=instrument_ids, start=start, before=before)
        return PriceRows(*arrays, lineage=lineage)
    return _price_history_load(instrument_ids=instrument_ids, start=start, before=before)


def _price_history_load(*, instrument_ids: list[int], start: date, before: date | None) -> PriceRows:
    """_prices_load's closes read from the rows of each day (where the packed series are not kept, and for a
    few months of a few instruments)."""
    earlier = PriceHistory.objects.filter(instrument=OuterRef("pk"), date__lt=start).order_by("-date")
    seeds = [
        (pk, day, micros)
        for pk, day, micros in Instrument.objects.filter(pk__in=instrument_ids)
        .annotate(
            seed_date=Subquery(earlier.values("date")[:1]),
            seed_micros=Subquery(earlier.annotate(micros=close_micros()).values("micros")[:1]),
        )
        .values_list("pk", "seed_date", "seed_micros")
        if day is not None
    ]
    # Scaled by the database, where it is far cheaper than a Decimal per row in Python.
    rows = (
        PriceHistory.objects.filter(instrument_id__in=instrument_ids, date__gte=start)
        .order_by("instrument_id", "date")
        .values_list("instrument_id", "date", close_micros())
    )
    ids, days, micros = _rows_iterated(rows)
    # Each seed is older than every row of its instrument: it goes just before the first of them.
    at = np.searchsorted(ids, [row[0] for row in seeds], side="left")
    return PriceRows.of(
        np.insert(ids, at, np.array([row[0] for row in seeds], dtype="i8")),
        np.insert(days, at, day_numbers(np.array([row[1] for row in seeds], dtype="M8[D]"))),
        np.insert(micros, at, np.array([row[2] for row in seeds], dtype="i8")),
    ).before(before)


def _rows_iterated(rows: QuerySet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Portable path (SQLite): plain tuples from the cursor, in batches, straight into numpy."""
    records = np.fromiter(
        rows.iterator(chunk_size=PRICE_FETCH_BATCH),
        dtype=np.dtype([("instrument_id", "i8"), ("date", "M8[D]"), ("micros", "i8")]),
    )
    return records["instrument_id"].copy(), day_numbers(records["date"]), records["micros"].copy()


def _fx_load(*, codes: set[str], base: str, start: date) -> dict[str, FxSeries]:
    """A conversion series into `base` for each currency code, from the stored rates of either direction."""
    base_major, base_factor = currency_major(base)
    majors = {code: currency_major(code) for code in codes}
    foreign = sorted({major for major, _ in majors.values() if major != base_major})
    rows: list[tuple[str, str, date, Decimal]] = []
    if foreign:
        pairs = Q(base__in=foreign, quote=base_major) | Q(base=base_major, quote__in=foreign)
        rows = list(
            FxRate.objects.filter(pairs, date__gte=start).values_list("base", "quote", "date", "rate")
        )
        # The last rate of each pair (each direction) before `start`, carried into the first days.
        newest_first = Window(RowNumber(), partition_by=[F("base"), F("quote")], order_by=F("date").desc())
        rows += list(
            FxRate.objects.filter(pairs, date__lt=start)
            .annotate(rank=newest_first)
            .filter(rank=1)
            .values_list("base", "quote", "date", "rate")
        )

    by_major: dict[str, dict[date, Decimal]] = {major: {} for major in foreign}
    inverse: dict[str, dict[date, Decimal]] = {major: {} for major in foreign}
    for pair_base, pair_quote, day, rate in rows:
        if pair_base == base_major:
            inverse[pair_quote][day] = Decimal(1) / rate
        else:
            by_major[pair_base][day] = rate
    series: dict[str, FxSeries] = {}
    for code, (major, factor) in majors.items():
        # Same rules as prices.fx.fx_rate_get: minor units scale through their major currency.
        scale = factor / base_factor
        if major == base_major:
            series[code] = FxSeries(dates=np.array([date.min], dtype="M8[D]"), rates=(scale,))
            continue
        # A direct rate wins over the inverse of the opposite pair stored for the same day.
        merged = inverse[major] | by_major[major]
        days = sorted(merged)
        series[code] = FxSeries(
            dates=np.array(days, dtype="M8[D]"), rates=tuple(scale * merged[day] for day in days)
        )
    return series


def benchmark_closes_load(*, instrument_id: int, start: date,
                          closes_before: date | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A benchmark's closes from its last one before `start` on (and before `closes_before`), as (dates,
    closes) arrays."""
    last_before = (
        PriceHistory.objects.filter(instrument_id=instrument_id, date__lt=start).order_by("-date")
        .values_list("date", flat=True).first()
    )
    rows = list(
        PriceHistory.objects.filter(instrument_id=instrument_id, date__gte=last_before or start,
                                    date__lt=closes_before or date.max)
        .order_by("date").values_list("date", "close")
    )
    dates = np.array([d for d, _ in rows], dtype="M8[D]")
    closes = np.array([float(c) for _, c in rows], dtype="f8")
    return dates, closes


def closes_on(*, instrument_ids: list[int], day: date) -> dict[int, float]:
    """The closes of `day` stored for these instruments (today's, for the live point: charts.live)."""
    return {pk: float(close) for pk, close in PriceHistory.objects.filter(instrument_id__in=instrument_ids, date=day)
            .values_list("instrument_id", "close")}
