"""A portfolio's chart data — value and invested series, ranges, sparklines, allocation — from loaded inputs.

Pure: no database access, so it runs wherever the inputs are (a Celery worker) and its output is cached as
JSON as is.

Valuation (portfolio.holdings; docs/holdings.md): an instrument's price on a day is its latest observation
on or before it — a stored close or one of the portfolio's own buy/sell prices — with any split since divided
out; a position with no observation (or no FX rate) is left out of the value and named in the warnings,
never valued at 0.

How it stays fast, and exact where it matters: transactions are replayed once in Decimal with the
average-cost engine (portfolio.holdings) and the state after each transaction date is recorded. Only the
value line is float64: numpy over a (days × instruments) grid of observations, built a block of instruments
at a time so memory stays bounded, each point rounded to cents when written out (a point whose float64 sum
may lie on the other side of a half cent than its exact value is valued exactly, so every point written is
its exact value rounded once). Every other money figure is Decimal: the invested line is a step function
that changes on transaction days only (O(transactions)), and on the days figures are reported for — today
and the bounds of the performance ranges — the value comes from the one valuation the dashboard uses too
(portfolio.holdings.portfolio_value_compute, O(holdings) per day), so the chart's last point is exactly the
dashboard's total.
"""

import gc
import hashlib
import json
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal, localcontext
from itertools import chain
from json.encoder import encode_basestring_ascii
from math import ceil
from operator import attrgetter, itemgetter, mul
from typing import NamedTuple, NotRequired, TypedDict

import numpy as np

from charts.selectors import ChartInputs, FxSeries, PriceRows
from charts.sparklines import Sparklines, SparkPoint, sparklines_make
from portfolio.cash import PortfolioTransactions
from portfolio.holdings import (
    CLOSE,
    EXACT_SUMS,
    ZERO,
    Observation,
    PortfolioValue,
    Position,
    TransactionEffect,
    money_format,
    money_sum,
    observation_new,
    observation_on,
    portfolio_value_compute,
    splits_of,
    trade_observations,
    transaction_apply_in_base,
    weights_format,
)
from portfolio.models import TransactionType
from portfolio.ranges import CHART_RANGES, PERFORMANCE_RANGES, SPARKLINE_MONTHS, months_before
from prices.fx import currency_major
from prices.models import Instrument
from prices.series import day_numbers

# Months back from `today` where a range starts (YTD starts on 1 January, MAX at the first transaction).
RANGE_MONTHS = {"1M": 1, "3M": 3, "6M": 6, "1Y": 12, "5Y": 60}

# The performance ranges' bounds (charts.performance) are here because they are days the chart values exactly.
PERFORMANCE_RANGE_MONTHS = {"1Y": 12, "5Y": 60}

# Downsampling rule: a range of up to DAILY_POINTS_MAX days keeps every day — 1Y (at most 367 days) and
# shorter are always daily. A longer range keeps weekly points anchored to the calendar week (Monday to
# Sunday), as weekly charts do: the last session of each week — its Friday (a market holiday's Friday
# carries that week's last close, the grid's forward fill) — before today, then today as the final point.
# The range's first day is always kept too, so the line starts where the range starts. Beyond
# THINNED_POINTS_MAX weeks (~10 years) only every `k`-th week's Friday is kept, `k` the smallest whole
# number that brings them within it, the weeks counted from a fixed Monday (not from today). So the points
# stay on their dates from one day to the next: a new day moves only the last point (today) or appends
# one (when yesterday was a Friday), besides the range's first day.
DAILY_POINTS_MAX = 400
THINNED_POINTS_MAX = 530


# A close's millionths times this is its exact Decimal (exponent -6, the millionths as its coefficient: what
# scaleb(-6) makes, in a third less time; exact below 10^28).
MICRO = Decimal("0.000001")

# Instruments per block of the (days × instruments) grids: 10 years × 128 columns × 8 bytes is ~4 MB per
# grid, so a handful of temporaries stay well inside a worker's memory whatever the number of holdings.
BLOCK_COLUMNS = 128



class SeriesPoint(TypedDict):
    date: str
    value: str
    invested: str


class InstrumentSlice(TypedDict):
    instrument_id: int  # a symbol can name two instruments held side by side (a user's manual KO, the shared KO)
    symbol: str
    name: str
    asset_class: str
    currency: str
    provider: str  # with the id, what tells two instruments of one symbol apart on the page ("manual": yours)
    value: str
    weight: str


class InstrumentInfo(NamedTuple):
    """What the allocation shows of an instrument (an Instrument serves as well)."""

    pk: int
    symbol: str
    name: str
    asset_class: str
    currency: str
    provider: str


class AssetClassSlice(TypedDict):
    asset_class: str
    value: str
    weight: str


class CurrencySlice(TypedDict):
    currency: str  # major currency: pence-quoted listings count as GBP
    value: str
    weight: str


class Allocation(TypedDict):
    total: str
    by_instrument: list[InstrumentSlice]
    by_asset_class: list[AssetClassSlice]
    by_currency: list[CurrencySlice]


class ChartWarning(TypedDict):
    code: str  # fx_missing_value | fx_missing_invested | no_price
    instrument_id: int  # the instrument it is about (the symbol alone may name two held)
    symbol: str
    message: str
    currency: NotRequired[str]
    start: NotRequired[str]
    end: NotRequired[str]
    days: NotRequired[int]


class AllocationText(NamedTuple):
    """An allocation written as its JSON text at once (allocation_json), for a caller that only stores it
    (charts.cache stores json_text() as it is)."""

    text: str

    def json_text(self) -> str:
        return self.text


class ChartData(TypedDict):
    base_currency: str
    as_of: str
    first_date: str | None
    ranges: dict[str, list[SeriesPoint]]
    # Instrument id ("12") -> its line. Plain data; as their JSON text (a Sparklines) for the generation,
    # which stores them as made.
    sparklines: dict[str, list[SparkPoint]] | Sparklines
    # Plain data; as its JSON text (an AllocationText) for the generation, which stores it as made.
    allocation: Allocation | AllocationText
    warnings: list[ChartWarning]


@dataclass(frozen=True)
class Flows:
    """The transactions dated up to today, in date then entry order, column by column (one list per field
    rather than one object per transaction: far fewer objects for the garbage collector to walk)."""

    days: list[int]  # days since the first transaction
    columns: list[int]
    types: list[str]
    currencies: list[str]
    amounts_local: list[Decimal]  # quantity × price, in the transaction's currency
    fees_local: list[Decimal]
    effects: list[TransactionEffect]  # the same amounts in the base currency (NaN without a rate)

    def __len__(self) -> int:
        return len(self.days)


@dataclass(frozen=True)
class _Replay:
    """State after the last transaction of each (column, day), sorted by column then day."""

    columns: np.ndarray  # int64
    days: np.ndarray  # int64, days since the first transaction
    quantities: np.ndarray  # float64, for the value grid
    exact: list[tuple[Decimal, Decimal]]  # (quantity, cost basis in the base currency — NaN when unknown)
    holding: np.ndarray  # bool per row: its quantity is not 0 (made once with the replay, kept with its book)
    cost_known: np.ndarray  # bool per row: its cost basis is not NaN
    missing_currencies: dict[int, set[str]]  # column -> transaction currencies without a rate
    flows: Flows


@dataclass(frozen=True)
class Snapshot:
    """The portfolio at the end of one day, valued in Decimal (portfolio.holdings.portfolio_value_compute)."""

    valued: PortfolioValue
    local: dict[str, Decimal]  # value of the positions valued, by instrument currency, in that currency


@dataclass(frozen=True)
class KnownValuations:
    """A generation's exact valuations, each with everything it was computed from, for the next generation of the
    same portfolio (_Valuer.snapshots): `inputs` what every day shares (the columns' instruments and currencies,
    the replayed positions, the trades and splits), `by_date` per day valued the day's own (each column's
    position and close, the day's rates) and its snapshot."""

    inputs: bytes
    by_date: dict[date, tuple[bytes, Snapshot]]
    book: "Book | None" = None  # what those valuations' positions were replayed from, for the next generation
    grid: "KeptGrid | None" = None  # the value grid, its days reused by the next generation whose inputs they share
    loaded: PortfolioTransactions | None = None  # the transactions as loaded, taken again by the next load

    @property
    def positions(self) -> int:
        """How many positions its snapshots hold (what their memory is made of)."""
        return sum(len(snapshot.valued.positions) for _, snapshot in self.by_date.values())


@dataclass(frozen=True)
class Entry:
    """A held position coming into the value (its first observation or FX rate arrived while it was held)."""

    day: int
    column: int
    value: Decimal  # in the base currency
    value_local: Decimal  # in the instrument's currency


@dataclass(frozen=True, repr=False)  # thousands of transactions: a failing assertion would print them all
class Book:
    """What a generation makes of the portfolio's transactions alone: the replay, the trades and splits observed
    in them, the digest of what every day's valuation shares (_Valuer) and the invested line — ~a fifth of a
    generation for 2,000 transactions. Kept with the valuations (KnownValuations.book), and the next generation of
    the portfolio takes it again when it is handed exactly what it was made from (_book_reusable): the same
    transactions, instruments and currencies, as many dated up to today, and the same rate on every (currency,
    day) it looked up. After a new day's closes, all the same."""

    transactions: list  # the TransactionRows replayed, as loaded
    ids: np.ndarray
    currencies: dict[int, str]
    dated: int  # how many of them are dated up to today (the flows, the trades and splits observed)
    fixed: dict[str, Decimal]  # _Rates.fixed: the codes at one rate whatever the day, not looked up
    rates_used: dict[tuple[str, date], str | None]  # every rate looked up, as its text (None: no rate)
    replay: "_Replay"
    trades: dict[int, list[Observation]]
    splits: dict[int, list[tuple[date, Decimal]]]
    shared: bytes  # _Valuer's digest of the inputs every day shares
    invested: list[Decimal]
    invested_floats: np.ndarray
    # What later steps made of the book, for the generations taking it again: of the book alone (the trades as arrays,
    # _trades_as_arrays; charts.performance's currency codes and the invested line's running totals), or with what
    # else it depends on in the key or checked on use (charts.performance: the flows' totals by which flows the value
    # saw, the past ranges' figures by their inputs' digest).
    made: dict = field(default_factory=dict)


@dataclass(frozen=True, repr=False)
class KeptGrid:
    """A generation's value grid with what it was made from, for the next generation of the portfolio
    (_grid_made): its days before the first whose inputs differ are taken as they are, only the days from there
    on made (after a new day's closes, this year's: a tenth of a 10-year grid, a day in January). Kept only of a
    grid that left nothing out (KeptGrid.of), so without its (days × instruments) mask of what it left out."""

    value: np.ndarray
    value_local: np.ndarray
    held_today: np.ndarray
    priced_today: np.ndarray
    replay: "_Replay"  # the replay (of its Book) whose states it holds: the same object, the same positions
    prices_read: int  # the read of the packed closes it was made from (prices.series.SeriesLineage.read)
    first: date
    code_rates: np.ndarray  # (days × codes): each day's rate of each code it converted at

    @classmethod
    def of(cls, grid: "_Grid", *, replay: "_Replay", prices: PriceRows, first: date,
           code_rates: np.ndarray) -> "KeptGrid | None":
        """What the next generation may take of `grid`: None when it left something out (its gaps and entries span
        days: made whole next time) or its closes were read otherwise than from a kept read."""
        lineage = prices.lineage
        if lineage is None or lineage.read is None or grid.value_gaps[0].any() or grid.left_out.any():
            return None
        return cls(value=grid.value, value_local=grid.value_local, held_today=grid.held_today,
                   priced_today=grid.priced_today, replay=replay, prices_read=lineage.read, first=first,
                   code_rates=code_rates)

    def grid(self, days: int) -> "_Grid":
        """Its first `days` days as a grid (one that left nothing out)."""
        return _Grid(value=self.value[:days], held_today=self.held_today, priced_today=self.priced_today,
                     value_gaps=np.zeros((3, len(self.held_today)), dtype="i8"),
                     left_out=np.zeros((days, len(self.held_today)), dtype=bool),
                     value_local=self.value_local[:days], entries=[], kept_days=days)

    @property
    def nbytes(self) -> int:
        return (self.value.nbytes + self.value_local.nbytes + self.held_today.nbytes + self.priced_today.nbytes
                + self.code_rates.nbytes)


@dataclass(frozen=True)
class ChartSeries:
    """The daily series behind the chart, from the first transaction to `today`: what chart_data_compute
    writes out, and what charts.performance measures, computed once for both."""

    first: date
    days: np.ndarray  # datetime64[D], every calendar day
    ids: np.ndarray  # column k of every grid is instrument ids[k]
    instruments: list[Instrument]
    codes: list[str]  # instruments' currency codes: the columns of grid.value_local
    replay: _Replay
    grid: "_Grid"
    invested: list[Decimal]  # per day: cost basis of the positions held whose cost is known
    invested_floats: np.ndarray  # the same as float64 (each level converted once, not each day)
    snapshots: dict[int, Snapshot]  # by day index: today and the performance ranges' bounds
    entries: list[Entry]
    rates: "_Rates"
    valuer: "_Valuer"  # values other days exactly: the value line's points near a half cent
    book: Book
    grid_kept: KeptGrid | None = None  # the grid with what it was made from (None: closes read otherwise)
    loaded: PortfolioTransactions | None = None  # ChartInputs.loaded

    def kept(self) -> KnownValuations:
        """What the next generation of the portfolio can reuse: the valuations made, the book, the grid and the
        transactions as loaded."""
        return KnownValuations(inputs=self.valuer.inputs, by_date=dict(self.valuer.valued), book=self.book,
                               grid=self.grid_kept, loaded=self.loaded)


def chart_series_compute(inputs: ChartInputs, *, today: date,
                         known: KnownValuations | None = None) -> ChartSeries | None:
    """None when there is nothing to draw yet: no transaction, or none on or before `today`. `known`: what an
    earlier generation of the same portfolio kept (series.kept()): its book, reused when made from exactly the same
    transactions (Book), its value grid's days before the first whose inputs changed (KeptGrid), and its exact
    valuations, each reused for a day whose valuation is given exactly the same inputs again (_Valuer.snapshots)."""
    if not inputs.transactions or today < inputs.transactions[0].date:
        return None
    with cyclic_gc_paused():
        return _series_compute(inputs, today=today, known=known)


class _CollectorPauses:
    """Pauses of the cyclic garbage collector, counted across the process's threads: the collector is
    process-wide, so with generations running side by side (a thread pool) the first pause switches it off
    and only the last one to end switches it back on (if it was on). Each thread saving and restoring the
    state it saw would leave it off for good whenever two pauses overlapped."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self.lock:
            if not self.count:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.count += 1
        try:
            yield
        finally:
            with self.lock:
                self.count -= 1
                if not self.count and self.was_enabled:
                    gc.enable()


_collector_pauses = _CollectorPauses()


def cyclic_gc_paused() -> AbstractContextManager[None]:
    """The replay allocates tens of thousands of small tuples, none of them in a reference cycle (reference
    counting frees them); each burst would set off the cyclic collector's passes over the worker's whole
    heap — a quarter of the generation's time, measured. Pauses nest and overlap across threads."""
    return _collector_pauses.paused()


def _series_compute(inputs: ChartInputs, *, today: date, known: KnownValuations | None) -> ChartSeries:
    first = inputs.transactions[0].date
    days = np.datetime64(first, "D") + np.arange((today - first).days + 1)
    ids = np.array(sorted(inputs.instruments), dtype="i8")
    instruments = [inputs.instruments[int(i)] for i in ids]
    codes = sorted({i.currency for i in instruments})
    rates = _Rates(inputs.fx)
    book = _book_make(inputs, ids=ids, instruments=instruments, first=first, today=today, n_days=len(days),
                      rates=rates, kept=known.book if known is not None else None)
    replay = book.replay
    observed = _observed(inputs, ids=ids, first=first, today=today, book=book)
    code_rates = np.stack([rates.by_day(code, days=days) for code in codes], axis=1)
    grid = _grid_made(ids=ids, instruments=instruments, codes=codes, replay=replay, observed=observed, first=first,
                      days=days, code_rates=code_rates, kept=known.grid if known is not None else None,
                      prices=inputs.prices)
    grid_kept = KeptGrid.of(grid, replay=replay, prices=inputs.prices, first=first, code_rates=code_rates)
    valuer = _Valuer(inputs, ids=ids, instruments=instruments, first=first, n_days=len(days), replay=replay,
                     observed=observed, rates=rates, shared=book.shared, known=known)
    snapshots = valuer.snapshots(_valuation_days(first=first, today=today))
    entries = [valuer.entry(day=day, column=column) for day, column in grid.entries]
    return ChartSeries(first=first, days=days, ids=ids, instruments=instruments, codes=codes, replay=replay,
                       grid=grid, invested=book.invested, invested_floats=book.invested_floats, snapshots=snapshots,
                       entries=entries, rates=rates, valuer=valuer, book=book, grid_kept=grid_kept,
                       loaded=inputs.loaded)


def _book_make(inputs: ChartInputs, *, ids: np.ndarray, instruments: list[Instrument], first: date, today: date,
               n_days: int, rates: "_Rates", kept: Book | None) -> Book:
    """The generation's Book: `kept` again when it was made from exactly the same transactions (its invested line
    extended to today's days), else made."""
    transactions = inputs.transactions
    currencies = {i.pk: i.currency for i in instruments}
    dated = bisect_right(transactions, today, key=_date_of)
    if kept is not None and _book_reusable(kept, transactions=transactions, ids=ids, currencies=currencies,
                                           dated=dated, rates=rates):
        if kept.transactions is not transactions:
            # Equal rows loaded anew (a write that moved the replay version and left them as they were, a rate of
            # a day no transaction looks up): the book holds the new ones, and the old go, so what is kept holds
            # one copy of them (its size counts one: charts/valuations_kept.py).
            kept = replace(kept, transactions=transactions)
        if len(kept.invested) == n_days:
            return kept
        invested = _invested_extended(kept, n_days=n_days)
        return replace(kept, invested=invested[0], invested_floats=invested[1])
    replay = _replay(inputs, ids=ids, first=first, today=today, rates=rates)
    dated_transactions = transactions[:dated]
    trades = trade_observations(dated_transactions, currencies=currencies, rate=rates)
    splits = splits_of(dated_transactions)
    # Every rate the replay and the trades looked up (the memo holds nothing else yet), as its text: two
    # Decimals of one value may be written with other places, and a product keeps them.
    rates_used = {key: None if rate is None else str(rate) for key, rate in rates.memo.items()}
    invested, invested_floats = _invested(replay, n_days=n_days)
    return Book(transactions=transactions, ids=ids, currencies=currencies, dated=dated, fixed=dict(rates.fixed),
                rates_used=rates_used, replay=replay, trades=trades, splits=splits,
                shared=_shared_digest(ids=ids, currencies=currencies, replay=replay, trades=trades, splits=splits),
                invested=invested, invested_floats=invested_floats)


def _book_reusable(kept: Book, *, transactions: list, ids: np.ndarray, currencies: dict[int, str], dated: int,
                   rates: "_Rates") -> bool:
    """Whether `kept` was made from exactly these inputs. The transactions compare as tuples: their amounts are
    read from columns of fixed places (numeric(28, 10) and (20, 6)), so two equal ones are written alike, and so
    are the cash trades made from them. The rates are looked up again (warming this generation's memo)."""
    if (kept.dated != dated or kept.currencies != currencies or not np.array_equal(kept.ids, ids)
            or kept.fixed != rates.fixed or kept.transactions != transactions):
        return False
    for (code, day), text in kept.rates_used.items():
        rate = rates(code, day)
        if (None if rate is None else str(rate)) != text:
            return False
    return True


def _invested_extended(kept: Book, *, n_days: int) -> tuple[list[Decimal], np.ndarray]:
    """The kept invested line over `n_days` days: its last level carried over the days after its own when no
    replayed state is dated on them (a new day), else made again."""
    known = len(kept.invested)
    days = kept.replay.days
    if not known or n_days < known or ((days >= known) & (days < n_days)).any():
        return _invested(kept.replay, n_days=n_days)
    more = n_days - known
    return kept.invested + [kept.invested[-1]] * more, np.concatenate(
        [kept.invested_floats, np.full(more, kept.invested_floats[-1])])


def chart_data_compute(inputs: ChartInputs, *, today: date, series: ChartSeries | None = None,
                       as_text: bool = False) -> ChartData:
    """`series`: chart_series_compute's result when the caller already has it (one generation, one replay).
    `as_text`: the sparklines as the JSON text they are made as (charts.sparklines) and the allocation written as
    JSON at once (AllocationText), for a caller that only stores them."""
    base = inputs.base_currency
    series = series or chart_series_compute(inputs, today=today)
    if series is None:
        first = inputs.transactions[0].date.isoformat() if inputs.transactions else None
        return _empty(base=base, today=today, first=first)

    first, days, ids, instruments = series.first, series.days, series.ids, series.instruments
    replay, grid = series.replay, series.grid

    label = _warning_labels(instruments)
    warnings = _gap_warnings(
        gaps=grid.value_gaps, days=days, base=base, code="fx_missing_value", what="is left out of the value",
        instruments=instruments, currencies=[i.currency for i in instruments], label=label,
    )
    warnings += _gap_warnings(
        gaps=_cost_gaps(replay, n_columns=len(ids), n_days=len(days)), days=days, base=base,
        code="fx_missing_invested", what="has its cost left out of invested", instruments=instruments,
        currencies=["/".join(sorted(replay.missing_currencies.get(col, ()))) for col in range(len(ids))],
        label=label,
    )
    held = np.flatnonzero(grid.held_today != 0)
    warnings += [
        ChartWarning(code="no_price", instrument_id=instruments[col].pk, symbol=instruments[col].symbol,
                     message=f"{label(col)} has no price yet: it is left out of the value.")
        for col in held
        if not grid.priced_today[col]
    ]

    kept = {key: _thin(range(_range_start(key=key, today=today, first=first), len(days)), first=first)
            for key in CHART_RANGES}
    wanted = sorted(set().union(*kept.values()))
    # The float64 points that may round to the other cent than their exact value (a half cent, as 778.2828 +
    # 4566.1122 = 5344.395, whose doubles sum to 5344.3949999999995): those days valued exactly too.
    doubtful = [k for k in np.asarray(wanted)[_near_half_cent(grid.value[wanted], n_columns=len(ids))].tolist()
                if k not in series.snapshots]
    exact = {**series.snapshots, **series.valuer.snapshots(doubtful)} if doubtful else series.snapshots
    points = _points(days=days, value=grid.value, invested=series.invested, snapshots=exact, wanted=wanted)
    sparklines = sparklines_make(inputs.prices if inputs.recent_prices is None else inputs.recent_prices,
                                 instrument_ids=ids[held].tolist(),
                                 since=months_before(today, SPARKLINE_MONTHS), until=today)
    return ChartData(
        base_currency=base,
        as_of=today.isoformat(),
        first_date=first.isoformat(),
        # Every range is a slice of the one daily series.
        ranges={key: [points[k] for k in kept[key]] for key in CHART_RANGES},
        sparklines=sparklines if as_text else sparklines.decoded(),
        allocation=_allocation(instruments=instruments, ids=ids, today=series.snapshots[len(days) - 1],
                               as_text=as_text),
        warnings=warnings,
    )


def performance_range_bounds(*, key: str, today: date) -> tuple[date, date]:
    """(base day b, last day e) of a named performance range (charts.performance); MAX's b is date.min."""
    if key == "1D":
        base_day = today - timedelta(days=1)
    elif key == "WTD":
        base_day = today - timedelta(days=today.isoweekday())
    elif key == "MTD":
        base_day = today.replace(day=1) - timedelta(days=1)
    elif key == "YTD":
        base_day = date(today.year - 1, 12, 31)
    elif key == "MAX":
        base_day = date.min
    else:
        base_day = months_before(today, PERFORMANCE_RANGE_MONTHS[key])
    return base_day, today


def _valuation_days(*, first: date, today: date) -> list[int]:
    """Day indices valued exactly: today, every performance range's base day, and every 31 December (the
    bounds of the calendar years) from the first transaction on."""
    wanted = {today} | {performance_range_bounds(key=key, today=today)[0] for key in PERFORMANCE_RANGES}
    wanted |= {date(year, 12, 31) for year in range(first.year, today.year)}
    return sorted((day - first).days for day in wanted if first <= day <= today)


class _Rates:
    """(currency code, day) -> the latest rate to the base currency on or before that day, exactly as stored
    (Decimal), or None: the portfolio.holdings.RateLookup of the chart inputs. Bisects plain lists, memoized
    (transactions share dates)."""

    def __init__(self, fx: dict[str, FxSeries]) -> None:
        self.series = {code: (series.dates.astype(object).tolist(), series.rates) for code, series in fx.items()}
        self.memo: dict[tuple[str, date], Decimal | None] = {}
        # The codes converted at one rate whatever the day (the base's own currency, its minor unit: one rate from
        # date.min): what this answers for them on any day, with no look-up.
        self.fixed = {code: rates[0] for code, (dates, rates) in self.series.items() if dates == [date.min]}

    def __call__(self, code: str, day: date) -> Decimal | None:
        key = (code, day)
        if key not in self.memo:
            dates, rates = self.series.get(code, ((), ()))
            at = bisect_right(dates, day) - 1
            self.memo[key] = rates[at] if at >= 0 else None
        return self.memo[key]

    def by_day(self, code: str, *, days: np.ndarray) -> np.ndarray:
        """The rate of each day as float64, carried forward; NaN before the first (or with none)."""
        dates, rates = self.series.get(code, ((), ()))
        if not dates:
            return np.full(len(days), np.nan)
        values = np.array([float(rate) for rate in rates])
        at = np.searchsorted(np.array(dates, dtype="M8[D]"), days, side="right") - 1
        return np.where(at >= 0, values[np.maximum(at, 0)], np.nan)


def _replay(inputs: ChartInputs, *, ids: np.ndarray, first: date, today: date, rates: _Rates) -> _Replay:
    """Replay every transaction once through the average-cost engine in Decimal, amounts in the base currency
    at the rate of the transaction's own date (portfolio.holdings.transaction_apply_in_base, as the dashboard
    does); keep the state after each (instrument, date) and each transaction's amounts.

    Only the engine's call and the state it leaves are a Python step per transaction (a third of them the cash's
    trades, for an account tracking cash): each one's column and day, and the flows' fields, are made by C calls
    (map) over them all, and a currency at a fixed rate (the base's own) is not looked up — half of what the loop
    cost besides the engine, measured."""
    transactions = inputs.transactions
    column_of = {int(instrument_id): column for column, instrument_id in enumerate(ids.tolist())}
    dates = list(map(_date_of, transactions))
    day_of = {day: (day - first).days for day in set(dates)}
    days = list(map(day_of.__getitem__, dates))
    columns = list(map(column_of.__getitem__, map(_instrument_of, transactions)))
    positions: list[Position | None] = [None] * len(column_of)
    # (column, day) as one int, column-major: sorting the keys sorts the states the way _StepRows needs.
    stride = max(days) + 1
    after: dict[int, tuple[Decimal, Decimal]] = {}
    missing: dict[int, set[str]] = {}
    effects: list[TransactionEffect] = []
    effect_add, fixed = effects.append, rates.fixed
    split = str(TransactionType.SPLIT)
    for tx, column, day in zip(transactions, columns, days, strict=True):
        if tx.type == split:
            rate = None
        elif (rate := fixed.get(tx.currency)) is None and (rate := rates(tx.currency, tx.date)) is None:
            missing.setdefault(column, set()).add(tx.currency)
        position = positions[column]
        if position is None:
            position = positions[column] = Position(instrument_id=tx.instrument_id)
        effect_add(transaction_apply_in_base(position, tx, rate=rate))
        # Later transactions of the same day overwrite: the chart shows the end-of-day state.
        after[column * stride + day] = (position.quantity, position.cost_basis)
    # The flows: the transactions dated up to today, the first ones (they are in date order).
    dated = bisect_right(dates, today)
    flowing = transactions[:dated]
    flows = Flows(days=days[:dated], columns=columns[:dated], types=list(map(_type_of, flowing)),
                  currencies=list(map(_currency_of, flowing)),
                  amounts_local=list(map(mul, map(_quantity_of, flowing), map(_price_of, flowing))),
                  fees_local=list(map(_fee_of, flowing)), effects=effects[:dated])
    keys = np.array(sorted(after), dtype="i8")
    exact = [after[key] for key in keys.tolist()]
    return _Replay(
        columns=keys // stride,
        days=keys % stride,
        quantities=np.array([float(quantity) for quantity, _ in exact], dtype="f8"),
        exact=exact,
        holding=np.array([bool(quantity) for quantity, _ in exact], dtype=bool),
        cost_known=np.array([not cost.is_nan() for _, cost in exact], dtype=bool),
        missing_currencies=missing,
        flows=flows,
    )


_date_of, _instrument_of, _type_of, _currency_of, _quantity_of, _price_of, _fee_of = (
    attrgetter(name) for name in ("date", "instrument_id", "type", "currency", "quantity", "price", "fee"))


@dataclass(frozen=True)
class _Observed:
    """The price observations of every instrument (portfolio.holdings): the stored closes, the portfolio's
    trades and its splits, and all of them merged into one step function per column for the value grid."""

    trades: dict[int, list[Observation]]  # by instrument id
    splits: dict[int, list[tuple[date, Decimal]]]
    closes: "_StepRows"  # the stored closes alone (rows of inputs.prices)
    rows: "_StepRows"  # closes, trades and split days merged
    prices: "_MergedPrices"  # float64 per merged row, in the instrument's currency, made a block at a time


def _observed(inputs: ChartInputs, *, ids: np.ndarray, first: date, today: date, book: Book) -> _Observed:
    """The book's trades and splits (those of the transactions dated up to today) merged with the closes."""
    trades, splits = book.trades, book.splits
    n_days = (today - first).days + 1
    prices = inputs.prices
    # The rows are sorted by instrument, and every one is of a column: each column's rows are one run.
    lo, hi = prices.rows_of(ids)
    runs = hi - lo
    # (A 10-year chart has 1.26 M closes: every array of their size is 10 MB, so few are made.)
    closes = _StepRows.of_runs(runs=runs, dates=prices.days, origin=int(day_numbers(first)), n_days=n_days)
    close_keys = closes.keys
    column_of = {int(instrument_id): column for column, instrument_id in enumerate(ids.tolist())}

    def with_close(columns: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Whether each (column, day) has a stored close, in one vectorized look-up."""
        if not len(columns) or not len(close_keys):
            return np.zeros(len(columns), dtype=bool)
        wanted = columns * closes.stride + days + 1
        found = np.searchsorted(close_keys, closes.needles(wanted))
        return close_keys[np.minimum(found, len(close_keys) - 1)] == wanted

    # The trades of days without a close (the close wins the day) ...
    trade_columns, trade_days, trade_prices = _trades_as_arrays(book, column_of=column_of, first=first)
    keep = np.flatnonzero(~with_close(trade_columns, trade_days))
    extra_columns, extra_days, extra_prices = [trade_columns[keep]], [trade_days[keep]], [trade_prices[keep]]
    split_columns = np.array([column_of[pk] for pk, rows in splits.items() for _ in rows], dtype="i8")
    split_days = np.array([(day - first).days for rows in splits.values() for day, _ in rows], dtype="i8")
    closed = {(column, day) for column, day, found in zip(
        split_columns.tolist(), split_days.tolist(), with_close(split_columns, split_days).tolist(), strict=True)
        if found}
    # ... and split days without any observation of their own.
    for instrument_id, rows in splits.items():
        column, instrument_trades = column_of[instrument_id], trades.get(instrument_id, [])
        traded_days = {o.date for o in instrument_trades}
        for split_day, _ in rows:
            day = (split_day - first).days
            if split_day in traded_days or (column, day) in closed:
                continue  # that day's own observation is after the split
            # From the split on, the observation carried from before it is divided by its ratio: exactly
            # what observation_on answers for that day.
            at = closes.last_on(columns=np.array([column]), day=day)[0]
            close = _close_observation(prices, int(at)) if at >= 0 else None
            carried = observation_on(close=close, trades=instrument_trades, splits=rows, on=split_day)
            if carried is not None:
                extra_columns.append(np.array([column]))
                extra_days.append(np.array([day]))
                extra_prices.append(np.array([float(carried.price)]))
    columns, days, merged_prices = (np.concatenate(parts) for parts in (extra_columns, extra_days, extra_prices))
    extra_keys = columns * closes.stride + days + 1
    order = np.argsort(extra_keys, kind="stable")
    columns, days, merged_prices, extra_keys = columns[order], days[order], merged_prices[order], extra_keys[order]
    # Rows go in before the first close row of a later (column, day): the merged rows stay sorted.
    at = np.searchsorted(close_keys, closes.needles(extra_keys))
    merged = closes.with_rows(at=at, columns=columns, days=days) if len(columns) else closes
    return _Observed(trades=trades, splits=splits, closes=closes, rows=merged,
                     prices=_MergedPrices(closes=prices, at=at, extra=merged_prices))


def _trades_as_arrays(book: Book, *, column_of: dict[int, int],
                      first: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The book's trades, instrument by instrument: each one's column, day and price (float64). Of the book alone:
    made once, kept with it (Book.made) for the generations that take it again."""
    made = book.made.get(_TRADES)
    if made is None:
        traded = [(column_of[pk], (o.date - first).days, float(o.price))
                  for pk, observed in book.trades.items() for o in observed]
        made = book.made[_TRADES] = (np.array([t[0] for t in traded], dtype="i8"),
                                     np.array([t[1] for t in traded], dtype="i8"),
                                     np.array([t[2] for t in traded], dtype="f8"))
    return made


_TRADES = "trades"  # Book.made's key of _trades_as_arrays


class _MergedPrices:
    """The float64 price of each merged row (the closes with the trades' and split days' rows inserted at
    `at`, np.insert's positions), made for one block of rows when the grid asks: an array of them all
    would be one more array the size of the closes (10 MB for 500 holdings × 10 years) alive at the grid's
    peak. A block's are the same floats as the whole array's (each close divided alone, the same rows
    inserted in the same order)."""

    def __init__(self, *, closes: PriceRows, at: np.ndarray, extra: np.ndarray) -> None:
        self.closes, self.at, self.extra = closes, at, extra
        # Where each inserted row lands among the merged rows.
        self.merged_at = at + np.arange(len(at))

    def of_rows(self, rows: np.ndarray) -> np.ndarray:
        """The prices of these merged rows (ascending): each close divided alone, as `between` does."""
        inserted = np.searchsorted(self.merged_at, rows)  # the inserted rows before each (or it, if inserted)
        extra = inserted < len(self.merged_at)
        extra[extra] = self.merged_at[inserted[extra]] == rows[extra]
        prices = np.empty(len(rows))
        prices[extra] = self.extra[inserted[extra]]
        prices[~extra] = self.closes.closes_of(rows[~extra] - inserted[~extra])
        return prices

    def between(self, start: int, stop: int) -> np.ndarray:
        """The prices of merged rows start .. stop-1."""
        first, last = np.searchsorted(self.merged_at, [start, stop]).tolist()
        close_start, close_stop = start - first, stop - last
        block = self.closes.closes_of(slice(close_start, close_stop))
        if first == last:
            return block
        return _inserted(block, at=self.at[first:last] - close_start, values=self.extra[first:last])


def _close_observation(prices: PriceRows, row: int) -> Observation:
    """Stored close `row` as an exact Decimal (from its millionths)."""
    return Observation(prices.days[row].astype("M8[D]").item(), Decimal(int(prices.micros[row])) * MICRO, CLOSE)


@dataclass(frozen=True)
class _Grid:
    value: np.ndarray  # per day, base currency (float64: what the value line draws)
    held_today: np.ndarray  # per instrument
    priced_today: np.ndarray  # per instrument: has an observation on or before today
    value_gaps: np.ndarray  # (days, first day, last day) per instrument left out of `value` for want of a rate
    # For charts.performance, which measures exactly what `value` counts:
    left_out: np.ndarray  # (days × instruments) bool: held but left out of `value` (no observation, or no rate)
    value_local: np.ndarray  # (days × codes): `value` by instrument currency, in that currency
    entries: list[tuple[int, int]]  # (day, column): held, left out the day before, counted in `value` that day
    kept_days: int = 0  # how many of its first days are an earlier generation's (KeptGrid), as they were


def _grid_compute(*, ids: np.ndarray, instruments: list[Instrument], codes: list[str], replay: _Replay,
                  observed: _Observed, days: np.ndarray, code_rates: np.ndarray) -> _Grid:
    """Value per day: (days × instruments) grids, BLOCK_COLUMNS instruments at a time. `code_rates`: (days × codes),
    each code's rate to the base currency on each day (_Rates.by_day)."""
    states = _StepRows(columns=replay.columns, days=replay.days, n_days=len(days))
    quantities = replay.quantities
    return _grid_of(states=states, quantities=lambda start, stop: quantities[start:stop], rows=observed.rows,
                    prices=observed.prices.between, column_code=_column_codes(instruments, codes),
                    code_rates=code_rates)


def _grid_made(*, ids: np.ndarray, instruments: list[Instrument], codes: list[str], replay: _Replay,
               observed: _Observed, first: date, days: np.ndarray, code_rates: np.ndarray, kept: KeptGrid | None,
               prices: PriceRows) -> _Grid:
    """The value grid: the kept one's days before the first whose inputs may differ (_grid_kept_days) as they
    are, and only the days from there on made — each day's value is summed across its own row, a block at a
    time, so those days' floats are the very ones a whole grid has — else the whole grid."""
    k = _grid_kept_days(kept, replay=replay, prices=prices, first=first, n_days=len(days), code_rates=code_rates)
    # Fewer than half the days kept: the whole grid costs less than picking the rows of the rest.
    if k < len(days) - k:
        return _grid_compute(ids=ids, instruments=instruments, codes=codes, replay=replay, observed=observed,
                             days=days, code_rates=code_rates)
    if k == len(days):  # the very inputs (the chart made again the same day)
        return kept.grid(k)
    states = _StepRows(columns=replay.columns, days=replay.days, n_days=len(days))
    states, state_rows = states.from_day(k)
    rows, observed_rows = observed.rows.from_day(k)
    quantities = replay.quantities[state_rows]
    prices_from = observed.prices.of_rows(observed_rows)
    tail = _grid_of(states=states, quantities=lambda start, stop: quantities[start:stop], rows=rows,
                    prices=lambda start, stop: prices_from[start:stop],
                    column_code=_column_codes(instruments, codes), code_rates=code_rates[k:])
    gaps = tail.value_gaps.copy()
    gaps[1:, gaps[0] > 0] += k
    return _Grid(value=np.concatenate([kept.value[:k], tail.value]), held_today=tail.held_today,
                 priced_today=tail.priced_today, value_gaps=gaps,
                 left_out=np.concatenate([np.zeros((k, len(ids)), dtype=bool), tail.left_out]),
                 value_local=np.concatenate([kept.value_local[:k], tail.value_local]),
                 entries=[(day + k, column) for day, column in tail.entries], kept_days=k)


def _grid_kept_days(kept: KeptGrid | None, *, replay: _Replay, prices: PriceRows, first: date, n_days: int,
                    code_rates: np.ndarray) -> int:
    """How many of the first days of the kept grid are this generation's as they are (0: none): those before the
    first day whose inputs may differ — the replayed states (the same replay), the closes (the read they come from
    names the kept grid's and the first day it may have changed: prices.series.SeriesLineage), each code's rates. (A
    grid that left something out is not kept, KeptGrid.of: its gaps and entries span days, so it is made whole.)"""
    lineage = prices.lineage
    if (kept is None or lineage is None or kept.replay is not replay or lineage.previous != kept.prices_read
            or kept.first != first or kept.code_rates.shape[1] != code_rates.shape[1]):
        return 0
    k = min(len(kept.value), n_days)
    if lineage.changed_from is not None:
        k = min(k, max((lineage.changed_from - kept.first).days, 0))
    old, new = kept.code_rates[:k], code_rates[:k]
    differ = np.flatnonzero(~((old == new) | (np.isnan(old) & np.isnan(new))).all(axis=1))
    if len(differ):
        k = int(differ[0])
    return k


def _column_codes(instruments: list[Instrument], codes: list[str]) -> np.ndarray:
    """Each column's index into the currency codes (the columns of code_rates)."""
    return np.array([codes.index(i.currency) for i in instruments], dtype="i8")


def _grid_of(*, states: "_StepRows", quantities: Callable[[int, int], np.ndarray], rows: "_StepRows",
             prices: Callable[[int, int], np.ndarray], column_code: np.ndarray, code_rates: np.ndarray) -> _Grid:
    """_grid_compute's grids from step rows over the days: each column's replayed states (`quantities` of rows
    start .. stop-1) and its observations (`prices` of theirs), one conversion series per code."""
    n_days, n_columns, codes = len(code_rates), len(column_code), range(code_rates.shape[1])
    grid = _Grid(
        value=np.zeros(n_days), held_today=np.zeros(n_columns), priced_today=np.zeros(n_columns, dtype=bool),
        value_gaps=np.zeros((3, n_columns), dtype="i8"), left_out=np.zeros((n_days, n_columns), dtype=bool),
        value_local=np.zeros((n_days, len(codes))), entries=[],
    )
    # The value in the base currency is the local one where every rate of a block is exactly 1 (a portfolio
    # in its instruments' currency): x × 1.0 is x, so that multiplication is skipped.
    rates_one = (code_rates == 1.0).all(axis=0)
    by_column_rates = np.ascontiguousarray(code_rates.T)
    day_numbers = np.arange(n_days)
    for lo in range(0, n_columns, BLOCK_COLUMNS):
        hi = min(lo + BLOCK_COLUMNS, n_columns)
        cols = np.arange(lo, hi)
        # Each (block × days) array is ~4 MB for 10 years: the arithmetic reuses them in place (out=) and
        # lets each go once read, so that a handful are alive at a time. The sums are made over the same
        # array in days × block order (by_day) whatever the layout of the rest: the same floats.
        held, _ = states.fill(lo=lo, hi=hi, values_between=quantities, none=0.0)
        local, first_observed = rows.fill(lo=lo, hi=hi, values_between=prices, none=np.nan)
        one = rates_one[column_code[cols]].all()

        # No observation yet: the instrument contributes nothing. One without a rate: left out, and reported.
        is_held = held != 0
        # (Every column observed from day 0 on, as with a close before the first day: priced is held.)
        priced = is_held if not first_observed.any() else is_held & (day_numbers >= first_observed[:, None])
        grid.held_today[cols] = held[:, -1]
        grid.priced_today[cols] = first_observed < n_days
        rate = None if one else by_column_rates[column_code[cols]]
        unvalued = ~priced if rate is None else ~priced | np.isnan(rate)
        np.multiply(local, held, out=local)  # the price, now held × price
        del held
        local[unvalued] = 0.0
        by_day = np.ascontiguousarray(local.T)
        # Columns summed per currency code, each day across its own row (numpy's sum of a contiguous row: the same
        # floats whatever the rows beside it — a matrix product's depend on the kernel BLAS picks for its shape, so
        # a grid made of a kept one's days and new ones would differ from a whole one in the last bits).
        block_codes = column_code[cols]
        for code in np.unique(block_codes).tolist():
            same = block_codes == code
            grid.value_local[:, code] += (by_day if same.all() else by_day[:, same]).sum(axis=1)
        if rate is not None:
            np.multiply(local, rate, out=local)  # now the value in the base currency
            local[unvalued] = 0.0
            by_day = np.ascontiguousarray(local.T)
        del rate, local
        grid.value[:] += by_day.sum(axis=1)
        del by_day

        # Left out for want of a rate, or of an observation: most charts have neither, and these stay 0.
        left_out = is_held & unvalued
        if not left_out.any():
            continue
        grid.value_gaps[:, cols] = _gaps(priced & unvalued)
        grid.left_out[:, cols] = left_out.T
        entered_columns, entered_days = np.nonzero(left_out[:, :-1] & ~unvalued[:, 1:])
        grid.entries.extend(zip((entered_days + 1).tolist(), (cols[entered_columns]).tolist(), strict=True))
    grid.entries.sort()
    return grid


_EXACTLY_ONE = Decimal(1).as_tuple()  # 1, exponent 0: a product by it is the other factor, digit for digit


class _Valuer:
    """The portfolio on one day, valued in Decimal by portfolio.holdings.portfolio_value_compute from the
    replayed positions, the exact stored closes and the trades: O(holdings) per day asked."""

    def __init__(self, inputs: ChartInputs, *, ids: np.ndarray, instruments: list[Instrument], first: date,
                 n_days: int, replay: _Replay, observed: _Observed, rates: _Rates, shared: bytes,
                 known: KnownValuations | None = None) -> None:
        self.prices, self.ids, self.first, self.replay, self.observed, self.rates = (
            inputs.prices, ids, first, replay, observed, rates)
        self.currencies = {i.pk: i.currency for i in instruments}
        codes = set(self.currencies.values())
        self.one_code = next(iter(codes)) if len(codes) == 1 else None
        self.codes = sorted(codes)
        self.states = _StepRows(columns=replay.columns, days=replay.days, n_days=n_days)
        self.id_list = ids.tolist()
        self.holding = replay.holding
        self.inputs = shared  # _shared_digest of the inputs every day shares
        # An earlier generation's valuations serve only if every day shares the same inputs as then.
        self.known = known.by_date if known is not None and known.inputs == self.inputs else {}
        self.valued: dict[date, tuple[bytes, Snapshot]] = {}

    def _day_inputs(self, on: date, states: np.ndarray, closes: np.ndarray) -> bytes:
        """A digest of what one day's valuation is computed from besides the shared inputs: each column's position
        (its state: a row of the replay, the same rows while the shared inputs are the same), the date and
        millionths of its last close on or before that day, and that day's rate of each currency (the arrays one
        value per column: their lengths are the shared inputs' columns)."""
        found = closes >= 0
        days, micros = np.full(len(closes), -1, dtype="i8"), np.full(len(closes), -1, dtype="i8")
        days[found], micros[found] = self.prices.days[closes[found]], self.prices.micros[closes[found]]
        return inputs_digest(states.astype("i8").tobytes(), days.tobytes(), micros.tobytes(),
                             text_lines(str(self.rates(code, on)) for code in self.codes))

    def _value(self, *, day: int, columns: np.ndarray, states: np.ndarray, closes: np.ndarray) -> PortfolioValue:
        """The valuation of `day` from each column's state and close rows on that day (_StepRows.last_on)."""
        # The columns with a state whose quantity is not 0, in one pass.
        held_at = np.flatnonzero(states >= 0)
        held_at = held_at[self.holding[states[held_at]]]
        held_columns, held_rows, close_rows = columns[held_at], states[held_at], closes[held_at]
        exact, ids = self.replay.exact, self.id_list
        held = {ids[column]: exact[row] for column, row in zip(held_columns.tolist(), held_rows.tolist(), strict=True)}
        found = close_rows >= 0
        rows = close_rows[found]
        closes_by_id = {
            ids[column]: observation_new((day_closed, Decimal(micros) * MICRO, CLOSE))
            for column, day_closed, micros in zip(held_columns[found].tolist(),
                                                  self.prices.days[rows].astype("M8[D]").tolist(),
                                                  self.prices.micros[rows].tolist(), strict=True)
        }
        return portfolio_value_compute(held=held, closes=closes_by_id, trades=self.observed.trades,
                                       splits=self.observed.splits, currencies=self.currencies, rate=self.rates,
                                       on=self.first + timedelta(days=day))

    def snapshots(self, days: list[int]) -> dict[int, Snapshot]:
        """The snapshot of each of `days` (ascending). Every day's state and close of every column are looked
        up together: one binary search over the states and one over the 1.26 M closes of a 10-year chart for
        all the days, their needles in order (numpy then starts each search where the previous one ended),
        rather than two per day. A day an earlier generation valued from exactly the same inputs (`known`: the
        shared ones and the day's own) has that valuation again, not computed anew: after a new day's closes,
        every day before them (each 31 December, the bases of YTD, MTD and WTD); after a past close corrected,
        the days before it."""
        columns = np.arange(len(self.ids))
        states = self.states.last_on_each(columns=columns, days=days)
        closes = self.observed.closes.last_on_each(columns=columns, days=days)
        made = {}
        for k, day in enumerate(days):
            on = self.first + timedelta(days=day)
            inputs = self._day_inputs(on, states[k], closes[k])
            # portfolio_value_compute is a function of its arguments alone: the same ones, the same valuation.
            known = self.known.get(on)
            if known is not None and known[0] == inputs:
                snapshot = known[1]
            else:
                snapshot = self._snapshot(self._value(day=day, columns=columns, states=states[k], closes=closes[k]))
            self.valued[on] = (inputs, snapshot)
            made[day] = snapshot
        return made

    def _snapshot(self, valued: PortfolioValue) -> Snapshot:
        if self.one_code is not None:  # every instrument in one currency (most portfolios): nothing to group
            counted = [position for position in valued.positions.values() if position.value is not None]
            if counted and counted[0].fx_rate.as_tuple() == _EXACTLY_ONE:
                # The base currency's own (its rate the day's for every position): each value is quantity ×
                # price × 1, the same digits as quantity × price — not multiplied again, for every position of
                # each day valued.
                amounts = [position.value for position in counted]
            else:
                amounts = [position.quantity * position.observation.price for position in counted]
            return Snapshot(valued=valued, local={self.one_code: money_sum(amounts)} if amounts else {})
        by_currency: dict[str, list[Decimal]] = {}
        for position in valued.positions.values():
            if position.value is not None:
                by_currency.setdefault(self.currencies[position.instrument_id], []).append(
                    position.quantity * position.observation.price)
        return Snapshot(valued=valued, local={code: money_sum(values) for code, values in by_currency.items()})

    def entry(self, *, day: int, column: int) -> Entry:
        columns = np.array([column])
        states = self.states.last_on(columns=columns, day=day)
        closes = self.observed.closes.last_on(columns=columns, day=day)
        position = next(iter(self._value(day=day, columns=columns, states=states, closes=closes).positions.values()))
        return Entry(day=day, column=column, value=position.value,
                     value_local=position.quantity * position.observation.price)


def _shared_digest(*, ids: np.ndarray, currencies: dict[int, str], replay: _Replay,
                   trades: dict[int, list[Observation]], splits: dict[int, list[tuple[date, Decimal]]]) -> bytes:
    """A digest of what every day's valuation is computed from besides its own positions, closes and rates
    (_Valuer._day_inputs), written exactly: a Decimal as its text (10 and 10.0 are equal numbers but not the same
    figures: a product keeps their places). A digest, not the texts: what is kept stays the size of the
    valuations (an active trader's thousands of transactions would outweigh them hundreds of times)."""
    # Each field of the thousands of trades (and states) as a column of its own, made in C (map, numpy): a text per
    # observation cost a Python step and a date's formatting each, a tenth of a generation from nothing kept.
    observations = list(chain.from_iterable(trades.values()))
    return inputs_digest(
        np.asarray(ids, dtype="i8").tobytes(),
        text_lines(f"{pk} {code}" for pk, code in sorted(currencies.items())),
        text_lines(map(str, chain.from_iterable(replay.exact))),
        np.array(list(trades), dtype="i8").tobytes(), np.array(list(map(len, trades.values())), dtype="i8").tobytes(),
        np.array(list(map(date.toordinal, map(_observed_date, observations))), dtype="i8").tobytes(),
        text_lines(map(str, map(_observed_price, observations))), text_lines(map(_observed_source, observations)),
        text_lines(f"{pk} {day} {ratio}" for pk, rows in splits.items() for day, ratio in rows),
    )


_observed_date, _observed_price, _observed_source = itemgetter(0), itemgetter(1), itemgetter(2)


def text_lines(items: Iterable[str]) -> bytes:
    """Texts of ours (numbers, dates, codes: no line break in any) as one, a line each."""
    return "\n".join(items).encode()


def inputs_digest(*parts: bytes) -> bytes:
    """A 128-bit BLAKE2b digest of the parts, each prefixed with its length (no two sequences of parts give the same
    bytes): equal inputs have equal digests, and different ones differ but with a chance of 2^-128."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.digest()


def _invested(replay: _Replay, *, n_days: int) -> tuple[list[Decimal], np.ndarray]:
    """Per day, the cost basis of the positions held whose cost is known: a step function changing only on
    transaction days, summed exactly (so its last value is the dashboard's total cost); and the same as
    float64, each level converted once (float() of a Decimal goes through its text: ~2 ms for 10 years of
    days, one by one)."""
    changes: dict[int, list[Decimal]] = {}
    previous_column, previous = -1, ZERO
    for column, day, (_, cost), cost_known in zip(replay.columns.tolist(), replay.days.tolist(), replay.exact,
                                                  replay.cost_known.tolist(), strict=True):
        if column != previous_column:
            previous_column, previous = column, ZERO
        if not cost_known:
            cost = ZERO
        if day < n_days and cost != previous:
            changes.setdefault(day, []).append(cost - previous)
        previous = cost
    invested, level, floats = [ZERO] * n_days, ZERO, np.zeros(n_days)
    with localcontext(EXACT_SUMS):
        change_days = sorted(changes)
        for day, until in zip(change_days, [*change_days[1:], n_days][:len(change_days)], strict=True):
            level += sum(changes[day], ZERO)
            invested[day:until] = [level] * (until - day)
            floats[day:until] = float(level)
    return invested, floats


def _cost_gaps(replay: _Replay, *, n_columns: int, n_days: int) -> np.ndarray:
    """(days, first day, last day) per column whose cost basis is unknown on some days (an amount without a
    rate): from the replayed states, which hold until the column's next one."""
    gaps = np.zeros((3, n_columns), dtype="i8")
    columns, days = replay.columns, replay.days
    unknown = np.flatnonzero(~replay.cost_known & (days < n_days))
    if not len(unknown):
        return gaps
    # Each unknown state holds until the column's next state, or to the last day.
    next_row = np.minimum(unknown + 1, len(days) - 1)
    same_column = (unknown + 1 < len(days)) & (columns[next_row] == columns[unknown])
    ends = np.minimum(np.where(same_column, days[next_row] - 1, n_days - 1), n_days - 1)
    for column, start, end in zip(columns[unknown].tolist(), days[unknown].tolist(), ends.tolist(), strict=True):
        if not gaps[0, column]:
            gaps[1, column] = start
        gaps[0, column] += end - start + 1
        gaps[2, column] = end
    return gaps


def _empty(*, base: str, today: date, first: str | None) -> ChartData:
    return ChartData(
        base_currency=base, as_of=today.isoformat(), first_date=first, ranges={key: [] for key in CHART_RANGES},
        sparklines={}, allocation=Allocation(total="0.00", by_instrument=[], by_asset_class=[], by_currency=[]),
        warnings=[],
    )


class _StepRows:
    """Rows sorted by (column, day) — states after transactions, or price observations — looked up as step
    functions: for each day and column, the last row of that column dated on or before the day. Rows before
    day 0 count as day -1 (carried into the first days); rows after the last day are ignored.

    Each row is one key, column * stride + day + 1 (days clipped to -1 .. n_days, n_days standing for "after
    the last day": past every look-up of its column, before the next column's rows); the closes' are int32
    when all fit. The keys alone are kept — the columns and days are decoded from them where needed, one
    block at a time: a 10-year, 500-holding chart has 1.26 M closes, and each int64 array of their size is
    10 MB.

    A whole grid of look-ups (fill) is each row's value repeated from its day to its column's next row's, all
    the columns of a block in one np.repeat (a forward fill written once, with no grid of row indices to
    carry down the days and transpose). A handful of look-ups (last_on) are binary searches over the keys.
    """

    def __init__(self, *, columns: np.ndarray, days: np.ndarray, n_days: int) -> None:
        self.n_days = n_days
        self.stride = n_days + 2
        self.keys = self._keys_add(columns * self.stride, days)

    @classmethod
    def of_runs(cls, *, runs: np.ndarray, dates: np.ndarray, origin: int, n_days: int) -> "_StepRows":
        """Rows already sorted, column k's being the k-th run of `runs[k]` rows, dated `dates` (days since
        1970, in order within a run), day 0 being `origin`: the keys made in one array, with no array of
        the days unless some must be clipped (a close more than a day before the first day)."""
        rows = object.__new__(cls)
        rows.n_days, rows.stride = n_days, n_days + 2
        # Each run's dates are in order: its first and last rows are its earliest and latest.
        ends = np.cumsum(runs)[runs > 0]
        earliest = int(dates[ends - runs[runs > 0]].min()) - origin if len(ends) else 0
        latest = int(dates[ends - 1].max()) - origin if len(ends) else 0
        rows.beyond = latest >= n_days
        # Four bytes a key when every key fits (any real chart: 500 columns × 10 years are 1.8 M), half of
        # an int64's: the keys are alive through the whole grid, at the generation's peak.
        bases = (np.arange(len(runs)) * rows.stride + 1).astype("i4" if len(runs) * rows.stride < 2**31 else "i8")
        if earliest < -1 or latest > n_days:
            keys = np.repeat(bases, runs)
            days = dates - origin
            keys += np.clip(days, -1, n_days, out=days)
        else:
            keys = np.repeat(bases - origin, runs)
            keys += dates
        rows.keys = keys
        return rows

    def needles(self, keys: np.ndarray) -> np.ndarray:
        """Keys to search for, in the keys' own type: np.searchsorted would otherwise make a copy of all the
        keys in the wider type of the two on every search."""
        return np.asarray(keys).astype(self.keys.dtype, copy=False)

    def _keys_add(self, keys: np.ndarray, days: np.ndarray) -> np.ndarray:
        """column * stride (a new array) -> the keys, in place."""
        # Whether some row is dated after the last day (fill then leaves it out).
        self.beyond = bool(len(days)) and bool(days.max() >= self.n_days)
        if len(days) and (days.min() < -1 or days.max() > self.n_days):
            days = np.clip(days, -1, self.n_days)
        keys += days
        keys += 1
        return keys

    def with_rows(self, *, at: np.ndarray, columns: np.ndarray, days: np.ndarray) -> "_StepRows":
        """These rows plus more (dated within the days), inserted at `at` (np.insert's positions)."""
        rows = object.__new__(_StepRows)
        rows.n_days, rows.stride, rows.beyond = self.n_days, self.stride, self.beyond
        rows.keys = _inserted(self.keys, at=at, values=columns * self.stride + days + 1)
        return rows

    def from_day(self, k: int) -> tuple["_StepRows", np.ndarray]:
        """These rows over the days from day k on (0 < k < n_days), day k their day 0: each column's rows dated
        from k on and its last before (carried into the first days, as a row before day 0 is); and the index here
        of each of their rows (to take their values from)."""
        n_columns = int(self.keys[-1]) // self.stride + 1 if len(self.keys) else 0
        bases = np.arange(n_columns, dtype="i8") * self.stride
        column_lo = np.searchsorted(self.keys, self.needles(bases))
        column_hi = np.searchsorted(self.keys, self.needles(bases + self.stride))
        from_k = np.searchsorted(self.keys, self.needles(bases + k + 1))
        begin = np.where(from_k > column_lo, from_k - 1, from_k)
        counts = column_hi - begin
        rows = np.repeat(begin - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))
        columns = np.repeat(np.arange(n_columns, dtype="i8"), counts)
        days = self.keys[rows].astype("i8") - columns * self.stride - 1
        window = object.__new__(_StepRows)
        window.n_days, window.stride, window.beyond = self.n_days - k, self.n_days - k + 2, self.beyond
        window.keys = window._keys_add(columns * window.stride, np.maximum(days - k, -1))
        return window, rows

    def last_on(self, *, columns: np.ndarray, day: int) -> np.ndarray:
        """Per column, the index of its last row dated on or before `day` (0 <= day < n_days), -1 when none."""
        return self.last_on_each(columns=columns, days=[day])[0]

    def last_on_each(self, *, columns: np.ndarray, days: list[int]) -> np.ndarray:
        """(days × columns): last_on of each day, in one search (needles in key order when `columns` and
        `days` ascend)."""
        if not len(self.keys):
            return np.full((len(days), len(columns)), -1)
        wanted = (columns * self.stride)[:, None] + (np.asarray(days, dtype="i8") + 1)
        found = np.searchsorted(self.keys, self.needles(wanted.ravel()), side="right") - 1
        owned = self.keys[np.maximum(found, 0)] // self.stride == np.repeat(columns, len(days))
        return np.where(owned, found, -1).reshape(len(columns), len(days)).T

    def fill(self, *, lo: int, hi: int, values_between: Callable[[int, int], np.ndarray],
             none: float) -> tuple[np.ndarray, np.ndarray]:
        """(grid, first): the (columns lo..hi-1 × days) grid holding on each day the value of the column's
        last row dated on or before it, `none` before its first row; and each column's first day with a
        row (n_days for none). `values_between(start, stop)`: the values of rows start .. stop-1."""
        n_columns = hi - lo
        bounds = np.searchsorted(self.keys, self.needles(np.arange(lo, hi + 1) * self.stride))
        start, stop, counts = int(bounds[0]), int(bounds[-1]), np.diff(bounds)
        # Each row's cell, column * n_days + day, from its key (column * stride + day + 1) with no division
        # (the columns' bounds are known): a 10-year block of closes is 300,000 rows.
        column_starts = np.arange(n_columns) * self.n_days
        cells = self.keys[start:stop] - np.repeat(np.arange(n_columns) * 2 + (lo * self.stride + 1), counts)
        # A row before the first day counts from day 0, where a row of that day is the later one and wins. Each
        # column's rows are in day order, so when no column's second row is before it (a column of closes has
        # one before the first day, the last one, as loaded) only the first rows are moved; else, or when rows
        # after the last day are to be left out, each row is compared with its column's start (a block of
        # closes is 300,000 rows: an array of them and a pass fewer).
        firsts = np.cumsum(counts) - counts
        several = counts > 1
        kept = None
        if self.beyond or (cells[firsts[several] + 1] < column_starts[several]).any():
            row_column_starts = np.repeat(column_starts, counts)
            np.maximum(cells, row_column_starts, out=cells)
            # Rows after the last day are ignored.
            if self.beyond:
                kept = cells < row_column_starts + self.n_days
                cells = cells[kept]
                counts = np.bincount(np.repeat(np.arange(n_columns), counts)[kept], minlength=n_columns)
            del row_column_starts
        else:
            owned = counts > 0
            at = firsts[owned]
            cells[at] = np.maximum(cells[at], column_starts[owned])
        # Each value runs from its row's cell to the next one (a row followed by one of the same day runs 0
        # cells); a column with no row of its day 0 begins with its `none`, from its first cell to its first
        # row's. A column with a row from day 0 on (a close before the first day) needs none: its rows' runs
        # alone fill it — and inserting only where needed keeps it a slice and a copy for most blocks of
        # closes (the cash's column, with no close, the one such column of its block), not a mask.
        firsts = np.cumsum(counts) - counts
        first_cells = cells[np.minimum(firsts, len(cells) - 1)] if len(cells) else column_starts
        first_days = np.where(counts > 0, first_cells - column_starts, self.n_days)
        lacking = np.flatnonzero(first_days > 0)
        if len(lacking):
            cells = _inserted(cells, at=firsts[lacking], values=column_starts[lacking])
        # Each run from its cell to the next (np.diff with `append` would join a copy of the cells first), the
        # cells let go before the values are made: a generation's peak is in here, each of a block's
        # arrays of rows (~300,000 for 128 instruments × 10 years) 2.4 MB.
        runs = np.empty_like(cells)
        np.subtract(cells[1:], cells[:-1], out=runs[:-1])
        if len(cells):
            runs[-1] = n_columns * self.n_days - cells[-1]
        del cells
        values = values_between(start, stop)
        if kept is not None:
            values = values[kept]
        if len(lacking):
            values = _inserted(values, at=firsts[lacking], values=none)
        grid = np.repeat(values, runs)
        return grid.reshape(n_columns, self.n_days), first_days


def _inserted(array: np.ndarray, *, at: np.ndarray, values: np.ndarray | float) -> np.ndarray:
    """np.insert(array, at, values) for positions `at` in ascending order (values: one per position, or one for
    all), in the array's type. Written as one np.concatenate of the array's pieces between the distinct positions
    and the values of each: np.insert at several positions marks every row of the result in a boolean mask and
    copies through it, twice a plain copy's time — 1 ms for the 1.26 M keys of a 10-year chart's closes, where
    the cash's ~1,000 trades (its observations: it has no close) all go in at one position. A piece costs about
    what the mask does for 2,000 rows: a small array, or one with many positions, is left to np.insert (the
    states of a block, a row or two per instrument)."""
    if not len(at):
        return array.copy()
    breaks = np.flatnonzero(at[1:] != at[:-1]) + 1
    if len(breaks) >= len(array) >> 11:
        return np.insert(array, at, values)
    values = np.broadcast_to(np.asarray(values, dtype=array.dtype), at.shape)
    breaks = breaks.tolist()
    pieces, previous = [], 0
    for position, start, stop in zip(at[[0, *breaks]].tolist(), [0, *breaks], [*breaks, len(at)], strict=True):
        pieces += (array[previous:position], values[start:stop])
        previous = position
    pieces.append(array[previous:])
    return np.concatenate(pieces)


def _gaps(mask: np.ndarray) -> np.ndarray:
    """Per column of a (columns × days) mask: how many days are set, the first and the last one."""
    count = mask.sum(axis=1)
    first = np.argmax(mask, axis=1)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return np.stack([count, first, last])


def _warning_labels(instruments: list[Instrument]) -> Callable[[int], str]:
    """Column -> how a warning's message names its instrument: its symbol, unless another of the portfolio's
    instruments has that symbol too (your manual KO beside the shared KO); then, as the holdings table labels
    them, the symbol and what tells the two apart: the provider ("KO · manual"), else the name, else the id.
    The instruments are grouped by symbol at the first warning (0.1 ms for 500: a chart without any pays nothing)."""
    by_symbol: dict[str, list[Instrument]] = {}

    def label(col: int) -> str:
        if not by_symbol:
            for each in instruments:
                by_symbol.setdefault(each.symbol, []).append(each)
        instrument = instruments[col]
        twins = by_symbol[instrument.symbol]
        if len(twins) < 2:
            return instrument.symbol

        def own(key: str) -> str | None:
            value = getattr(instrument, key)
            unique = value and value != instrument.symbol and sum(getattr(t, key) == value for t in twins) == 1
            return value if unique else None

        return f"{instrument.symbol} · {own('provider') or own('name') or f'#{instrument.pk}'}"

    return label


def _gap_warnings(*, gaps: np.ndarray, days: np.ndarray, base: str, code: str, what: str,
                  instruments: list[Instrument], currencies: list[str],
                  label: Callable[[int], str]) -> list[ChartWarning]:
    warnings = []
    for col in np.flatnonzero(gaps[0]):
        instrument, currency = instruments[col], currencies[col]
        count, start, end = (int(n) for n in gaps[:, col])
        start_day, end_day = str(days[start]), str(days[end])
        warnings.append(ChartWarning(
            code=code, instrument_id=instrument.pk, symbol=instrument.symbol, currency=currency, start=start_day,
            end=end_day, days=count,
            message=f"No {currency}/{base} rate: {label(col)} {what} on {count} day(s) from {start_day} to {end_day}.",
        ))
    return warnings


_UNIT_ROUNDOFF = 2.0 ** -53


def _near_half_cent(value: np.ndarray, *, n_columns: int) -> np.ndarray:
    """Whether each float64 point of the value line is within its error bound of a half cent, so that it may
    round to the other cent than the exact value it stands for. Each point sums n_columns terms of
    quantity × price × rate, none negative (no position is sold below 0; closes and rates are positive), each
    term off by a few roundings and the sum by at most one rounding per term and per block added (recursive
    summation's bound; numpy's pairwise sum does better): relative error at most (n_columns + blocks + a few)
    × 2⁻⁵³, doubled here for margin (a split divided out or the scaling to cents is one rounding more). Far
    from a half cent the point rounds as its exact value does; near one it is valued exactly: ~6 days in 10⁵
    for 100 holdings worth 10⁷, besides the exact half cents themselves (closes of 4 decimals make one day in
    100 one: 41 of the 3,654 days of the bench's 100 holdings)."""
    blocks = ceil(n_columns / BLOCK_COLUMNS)
    in_cents = value * 100
    bound = 2 * (n_columns + blocks + 8) * _UNIT_ROUNDOFF * np.abs(in_cents)
    return np.abs(in_cents - np.floor(in_cents) - 0.5) <= bound + _UNIT_ROUNDOFF


def _money(amount: float) -> str:
    """A value point of the float64 line: its shortest decimal form (2.675, where the double holds
    2.67499999…) rounded half-even to cents, as the Decimal figures are."""
    return money_format(Decimal(repr(amount)))


def _points(*, days: np.ndarray, value: np.ndarray, invested: list[Decimal], snapshots: dict[int, Snapshot],
            wanted: list[int]) -> dict[int, SeriesPoint]:
    """The points of the `wanted` day indices (those some range keeps: formatting every day of ten years
    would be mostly thrown away). Value from the float64 grid, except on the days valued exactly (today,
    the performance ranges' bounds, and the points near a half cent: _near_half_cent — every wanted day near one
    must be among `snapshots`), where it is the Decimal valuation's; invested always Decimal."""
    dates = np.datetime_as_string(days[wanted], unit="D").tolist()
    values = _cents_texts(value[wanted])
    return {
        k: SeriesPoint(date=day, value=money_format(snapshots[k].valued.total_value) if k in snapshots else v,
                       invested=money_format(invested[k]))
        for k, day, v in zip(wanted, dates, values, strict=True)
    }


def _cents_texts(value: np.ndarray) -> list[str]:
    """Points of the float64 line not near a half cent (_near_half_cent) written in cents as _money writes them:
    such a point is farther from a half cent than its shortest decimal form, or its exact value, is from it, so
    rounding it to the nearest cent in float64 rounds as they do (tested against _money over every magnitude), at a
    fifth of the cost of a Decimal each. A point that is not finite (none is) is left to _money."""
    cents = np.rint(value * 100)
    exact = np.abs(cents) < 2.0 ** 53  # every whole number of cents is a float64 (larger ones are near a half cent)
    units, hundredths = np.divmod(np.abs(np.where(exact, cents, 0)).astype("i8"), 100)
    return [f"{'-' if c < 0 else ''}{u}.{h:02d}" if ok else _money(v) for c, u, h, ok, v in zip(
        cents.tolist(), units.tolist(), hundredths.tolist(), exact.tolist(), value.tolist(), strict=True)]


def chart_range_start_day(*, key: str, today: date) -> date | None:
    """The first day of a chart range ending `today` (None for MAX: the series' first day), before it is cut to
    the portfolio's first day."""
    if key == "MAX":
        return None
    return date(today.year, 1, 1) if key == "YTD" else months_before(today, RANGE_MONTHS[key])


def _range_start(*, key: str, today: date, first: date) -> int:
    """Index of the range's first day in the daily series (0 when the range reaches before the first day)."""
    start = chart_range_start_day(key=key, today=today)
    return 0 if start is None else max(0, (start - first).days)


def _thin(days: range, *, first: date) -> list[int]:
    """The day indices a range keeps, per the downsampling rule at the top of this module (index 0 is
    `first`, the last index is today)."""
    if len(days) <= DAILY_POINTS_MAX:
        return list(days)
    every = ceil(len(days) / (7 * THINNED_POINTS_MAX))  # weeks between two kept Fridays
    # date.toordinal() - 1 counts days from Monday 1 January of year 1: its weekday is that modulo 7 and
    # its week (counted from that Monday) that divided by 7.
    origin = first.toordinal() - 1
    friday = days.start + (_FRIDAY - (origin + days.start)) % 7  # the range's first Friday
    kept = [day for day in range(friday, days.stop - 1, 7) if (origin + day) // 7 % every == 0]
    if not kept or kept[0] != days.start:
        kept.insert(0, days.start)
    return [*kept, days.stop - 1]


_FRIDAY = 4  # date.weekday()


def _allocation(*, instruments: list[Instrument], ids: np.ndarray, today: Snapshot,
                as_text: bool = False) -> Allocation | AllocationText:
    """Today's market value in the base currency (the dashboard's) by instrument, asset class and currency;
    instruments that cannot be valued today (no observation, no rate) are left out, as the warnings say.
    `as_text`: written as JSON at once."""
    by_id = {int(instrument_id): instrument for instrument_id, instrument in zip(ids.tolist(), instruments,
                                                                                  strict=True)}
    valued = [(by_id[instrument_id], position.value) for instrument_id, position in today.valued.positions.items()
              if position.value is not None]
    if as_text:
        return AllocationText(allocation_json(valued=valued, total=today.valued.total_value))
    return allocation_of(valued=valued, total=today.valued.total_value)


def allocation_of(*, valued: list[tuple[Instrument | InstrumentInfo, Decimal]], total: Decimal) -> Allocation:
    """The allocation of positions valued in the base currency (exact), `total` their sum: the generation's,
    from its own valuation; the live point's (charts.live), from the dashboard's, is the same figures written as
    JSON at once (allocation_json). Ordered by value, then symbol, then instrument id: the order both are given in
    differs (positions by instrument id, holdings in the valuation's order), so ties — two instruments of one
    symbol worth the same — are broken by the id."""
    parts = _allocation_parts(valued=valued, total=total)
    return Allocation(
        total=parts.total,
        # InstrumentSlice's members written as a dict display: a third of the cost of the TypedDict's call with
        # keywords, once per position (every chart generation).
        by_instrument=[
            {"instrument_id": i.pk, "symbol": i.symbol, "name": i.name, "asset_class": i.asset_class,
             "currency": i.currency, "provider": i.provider, "value": value, "weight": weight}
            for i, value, weight in parts.instruments
        ],
        by_asset_class=parts.by_asset_class,
        by_currency=parts.by_currency,
    )


def allocation_json(*, valued: list[tuple[Instrument | InstrumentInfo, Decimal]], total: Decimal) -> str:
    """json.dumps(allocation_of(valued=valued, total=total)), byte for byte, its instrument rows written directly
    (no dict per row, nor the encoder's walk over them: under half the cost), for the live point, which writes an
    allocation of every holding on each dashboard miss (charts.live). The rows' strings are escaped as json.dumps
    escapes them (ASCII only); their value and weight are ours (money_format, weights_format: digits, sign,
    point), written as they are."""
    parts, text = _allocation_parts(valued=valued, total=total), encode_basestring_ascii
    rows = ", ".join([
        f'{{"instrument_id": {i.pk:d}, "symbol": {text(i.symbol)}, "name": {text(i.name)}, '
        f'"asset_class": {text(i.asset_class)}, "currency": {text(i.currency)}, "provider": {text(i.provider)}, '
        f'"value": "{value}", "weight": "{weight}"}}'
        for i, value, weight in parts.instruments])
    return (f'{{"total": "{parts.total}", "by_instrument": [{rows}], '
            f'"by_asset_class": {json.dumps(parts.by_asset_class)}, "by_currency": {json.dumps(parts.by_currency)}}}')


class _AllocationParts(NamedTuple):
    """An allocation's figures, written out, before it is shaped (allocation_of) or written as JSON
    (allocation_json)."""

    total: str
    instruments: list[tuple[Instrument | InstrumentInfo, str, str]]  # (instrument, value, weight), in order
    by_asset_class: list[AssetClassSlice]
    by_currency: list[CurrencySlice]


def _allocation_parts(*, valued: list[tuple[Instrument | InstrumentInfo, Decimal]],
                      total: Decimal) -> _AllocationParts:
    """The positions in allocation_of's order, summed by asset class and by currency, weighed and written out."""
    valued = sorted(valued, key=lambda item: (-item[1], item[0].symbol, item[0].pk))
    by_class: dict[str, list[Decimal]] = {}
    by_currency: dict[str, list[Decimal]] = {}
    majors: dict[str, str] = {}  # currency -> its major, asked once per currency, not once per position
    for instrument, value in valued:
        by_class.setdefault(instrument.asset_class, []).append(value)
        if (major := majors.get(code := instrument.currency)) is None:
            major = majors[code] = currency_major(code)[0]
        by_currency.setdefault(major, []).append(value)
    classes = sorted(((name, money_sum(v)) for name, v in by_class.items()), key=lambda item: (-item[1], item[0]))
    currencies = sorted(((name, money_sum(v)) for name, v in by_currency.items()),
                        key=lambda item: (-item[1], item[0]))
    values = [v for _, v in valued]
    return _AllocationParts(
        total=money_format(total),
        instruments=list(zip([i for i, _ in valued], map(money_format, values), weights_format(values), strict=True)),
        by_asset_class=[
            AssetClassSlice(asset_class=name, value=money_format(value), weight=weight)
            for (name, value), weight in zip(classes, weights_format([v for _, v in classes]), strict=True)
        ],
        by_currency=[
            CurrencySlice(currency=name, value=money_format(value), weight=weight)
            for (name, value), weight in zip(currencies, weights_format([v for _, v in currencies]), strict=True)
        ],
    )
