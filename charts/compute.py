"""A portfolio's chart data — value and invested series, ranges, sparklines, allocation — from loaded inputs.

Pure: no database access, so it runs wherever the inputs are (a Celery worker) and its output is cached as
JSON as is.

How it stays fast: transactions are replayed once with the average-cost engine (portfolio.holdings) and
the state after each transaction date is recorded; every other step is numpy over a (days × instruments)
grid, built a block of instruments at a time so memory stays bounded. Money is float64 inside the
computation (summing ~2 M products per chart in Decimal would take seconds) and is rounded to cents
only when written out.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from math import ceil, floor
from typing import NotRequired, TypedDict

import numpy as np

from charts.selectors import ChartInputs, FxSeries
from portfolio.holdings import Position, position_apply
from prices.fx import currency_major
from prices.models import Instrument

RANGES = ("1M", "3M", "6M", "YTD", "1Y", "5Y", "MAX")
# Months back from `today` where a range starts (YTD starts on 1 January, MAX at the first transaction).
RANGE_MONTHS = {"1M": 1, "3M": 3, "6M": 6, "1Y": 12, "5Y": 60}

# Downsampling rule: a range of up to DAILY_POINTS_MAX days keeps every day — 1Y (at most 367 days) and
# shorter are always daily. A longer range keeps one point every `step` days counted back from `today`
# (so the last point is today and all points fall on the same weekday), where `step` is 7 (weekly) unless
# that would exceed THINNED_POINTS_MAX points (~10 years weekly), then the smallest multiple of 7 that
# does not; the range's first day is always kept so the line starts where the range starts.
DAILY_POINTS_MAX = 400
THINNED_POINTS_MAX = 530

SPARKLINE_MONTHS = 3
SPARKLINE_POINTS_MAX = 60  # a sparkline is ~100 px wide: more points draw nothing more

# Instruments per block of the (days × instruments) grids: 10 years × 128 columns × 8 bytes is ~4 MB per
# grid, so a handful of temporaries stay well inside a worker's memory whatever the number of holdings.
BLOCK_COLUMNS = 128

WEIGHT_PLACES = 4  # weights are fractions of 1: 0.1234 = 12.34 %

NAN = Decimal("NaN")


class SeriesPoint(TypedDict):
    date: str
    value: str
    invested: str


class SparkPoint(TypedDict):
    date: str
    close: str  # in the instrument's own currency


class InstrumentSlice(TypedDict):
    symbol: str
    name: str
    asset_class: str
    currency: str
    value: str
    weight: str


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
    symbol: str
    message: str
    currency: NotRequired[str]
    start: NotRequired[str]
    end: NotRequired[str]
    days: NotRequired[int]


class ChartData(TypedDict):
    base_currency: str
    as_of: str
    first_date: str | None
    ranges: dict[str, list[SeriesPoint]]
    sparklines: dict[str, list[SparkPoint]]
    allocation: Allocation
    warnings: list[ChartWarning]


@dataclass(frozen=True)
class _TxInBase:
    """A transaction with its amounts in the base currency (NaN when no rate: never converted at 1)."""

    instrument_id: int
    type: str
    date: date
    quantity: Decimal
    price: Decimal
    fee: Decimal


@dataclass(frozen=True)
class _Replay:
    """State after the last transaction of each (column, day), sorted by column then day."""

    columns: np.ndarray  # int64
    days: np.ndarray  # int64, days since the first transaction
    quantities: np.ndarray  # float64
    costs: np.ndarray  # float64 in the base currency; NaN when a transaction amount could not be converted
    missing_currencies: dict[int, set[str]]  # column -> transaction currencies without a rate
    # Each transaction's own realized gain (non-zero for sells only), by transaction day; NaN without a rate.
    realized_days: np.ndarray  # int64, days since the first transaction
    realized_gains: np.ndarray  # float64 in the base currency


@dataclass(frozen=True)
class ChartSeries:
    """The daily arrays behind the chart, from the first transaction to `today`: what chart_data_compute
    writes out, and what charts.performance measures, computed once for both."""

    first: date
    days: np.ndarray  # datetime64[D], every calendar day
    ids: np.ndarray  # column k of every grid is instrument ids[k]
    instruments: list[Instrument]
    codes: list[str]  # instruments' currency codes: the columns of grid.value_local and grid.entries_local
    replay: "_Replay"
    grid: "_Grid"


def chart_series_compute(inputs: ChartInputs, *, today: date) -> ChartSeries | None:
    """None when there is nothing to draw yet: no transaction, or none on or before `today`."""
    if not inputs.transactions or today < inputs.transactions[0].date:
        return None
    first = inputs.transactions[0].date
    days = np.datetime64(first, "D") + np.arange((today - first).days + 1)
    ids = np.array(sorted(inputs.instruments), dtype="i8")
    instruments = [inputs.instruments[int(i)] for i in ids]
    codes = sorted({i.currency for i in instruments})
    replay = _replay(inputs, ids=ids, first=first)
    grid = _grid_compute(inputs, ids=ids, instruments=instruments, codes=codes, replay=replay, days=days)
    return ChartSeries(first=first, days=days, ids=ids, instruments=instruments, codes=codes, replay=replay,
                       grid=grid)


def chart_data_compute(inputs: ChartInputs, *, today: date, series: ChartSeries | None = None) -> ChartData:
    """`series`: chart_series_compute's result when the caller already has it (one generation, one replay)."""
    base = inputs.base_currency
    series = series or chart_series_compute(inputs, today=today)
    if series is None:
        first = inputs.transactions[0].date.isoformat() if inputs.transactions else None
        return _empty(base=base, today=today, first=first)

    first, days, ids, instruments = series.first, series.days, series.ids, series.instruments
    replay, grid = series.replay, series.grid

    warnings = _gap_warnings(
        gaps=grid.value_gaps, days=days, base=base, code="fx_missing_value", what="is left out of the value",
        instruments=instruments, currencies=[i.currency for i in instruments],
    )
    warnings += _gap_warnings(
        gaps=grid.cost_gaps, days=days, base=base, code="fx_missing_invested",
        what="has its cost left out of invested", instruments=instruments,
        currencies=["/".join(sorted(replay.missing_currencies.get(col, ()))) for col in range(len(ids))],
    )
    held = np.flatnonzero(grid.held_today != 0)
    warnings += [
        ChartWarning(code="no_price", symbol=instruments[col].symbol,
                     message=f"{instruments[col].symbol} has no price yet: it is left out of the value.")
        for col in held
        if not grid.priced_today[col]
    ]

    points = _points(days=days, value=grid.value, invested=grid.invested)
    return ChartData(
        base_currency=base,
        as_of=today.isoformat(),
        first_date=first.isoformat(),
        # Every range is a slice of the one daily series.
        ranges={key: _thin(points[_range_start(key=key, today=today, first=first):]) for key in RANGES},
        sparklines=_sparklines(inputs, ids=ids, instruments=instruments, columns=held, today=today),
        allocation=_allocation(instruments=instruments, values=grid.today_value),
        warnings=warnings,
    )


@dataclass(frozen=True)
class _Grid:
    value: np.ndarray  # per day, base currency
    invested: np.ndarray  # per day, base currency
    today_value: np.ndarray  # per instrument; NaN when it cannot be valued today
    held_today: np.ndarray  # per instrument
    priced_today: np.ndarray  # per instrument: has a close on or before today
    value_gaps: np.ndarray  # (days, first day, last day) per instrument left out of `value` for want of a rate
    cost_gaps: np.ndarray  # the same for `invested`
    # For charts.performance, which measures exactly what `value` counts:
    unrealized: np.ndarray  # per day: value - cost of the positions in `value` whose cost is known
    left_out: np.ndarray  # (days × instruments) bool: held but left out of `value` (no close yet, or no rate)
    value_local: np.ndarray  # (days × codes): `value` by instrument currency, in that currency
    # (days × codes): value, in its currency, of positions counted in `value` that day but left out the day
    # before — their first close or rate arrived while they were held.
    entries_local: np.ndarray


def _grid_compute(inputs: ChartInputs, *, ids: np.ndarray, instruments: list[Instrument], codes: list[str],
                  replay: _Replay, days: np.ndarray) -> _Grid:
    """Value and invested per day: (days × instruments) grids, BLOCK_COLUMNS instruments at a time."""
    n_days, n_columns = len(days), len(ids)
    states = _StepRows(columns=replay.columns, days=replay.days, n_days=n_days)
    quotes = _StepRows(
        columns=np.searchsorted(ids, inputs.prices.instrument_ids),
        days=(inputs.prices.dates - days[0]).astype("i8"),
        n_days=n_days,
    )
    # One extra element answers the lookups' -1 ("no row yet"): nothing held, no cost, no close.
    quantities = np.append(replay.quantities, 0.0)
    costs = np.append(replay.costs, 0.0)
    closes = np.append(inputs.prices.closes, np.nan)
    # One conversion series per currency code, and each instrument's index into them.
    code_rates = np.stack([_rates_by_day(inputs.fx.get(code), days=days) for code in codes], axis=1)
    column_code = np.array([codes.index(i.currency) for i in instruments], dtype="i8")

    grid = _Grid(
        value=np.zeros(n_days), invested=np.zeros(n_days), today_value=np.full(n_columns, np.nan),
        held_today=np.zeros(n_columns), priced_today=np.zeros(n_columns, dtype=bool),
        value_gaps=np.zeros((3, n_columns), dtype="i8"), cost_gaps=np.zeros((3, n_columns), dtype="i8"),
        unrealized=np.zeros(n_days), left_out=np.zeros((n_days, n_columns), dtype=bool),
        value_local=np.zeros((n_days, len(codes))), entries_local=np.zeros((n_days, len(codes))),
    )
    for lo in range(0, n_columns, BLOCK_COLUMNS):
        cols = np.arange(lo, min(lo + BLOCK_COLUMNS, n_columns))
        state = states.last_index(columns=cols)
        held, cost = quantities[state], costs[state]
        quote = quotes.last_index(columns=cols)
        close = closes[quote]
        rate = code_rates[:, column_code[cols]]

        # No close yet: the instrument contributes nothing. A close without a rate: left out, and reported.
        priced = (held != 0) & (quote >= 0)
        valued = priced & ~np.isnan(rate)
        contribution = np.where(valued, held * close * rate, 0.0)
        grid.value[:] += contribution.sum(axis=1)
        cost_known = ~np.isnan(cost)
        grid.invested[:] += np.where(cost_known, cost, 0.0).sum(axis=1)

        grid.today_value[cols] = np.where(valued[-1], contribution[-1], np.nan)
        grid.held_today[cols] = held[-1]
        grid.priced_today[cols] = quote[-1] >= 0
        grid.value_gaps[:, cols] = _gaps(priced & ~valued)
        grid.cost_gaps[:, cols] = _gaps(~cost_known)

        grid.unrealized[:] += np.where(valued & cost_known, contribution - cost, 0.0).sum(axis=1)
        left_out = (held != 0) & ~valued
        grid.left_out[:, cols] = left_out
        # Columns summed per currency code with one matrix product: (days × block) @ (block × codes).
        by_code = np.eye(len(codes))[column_code[cols]]
        local = np.where(valued, held * close, 0.0)
        grid.value_local[:] += local @ by_code
        left_before = np.vstack([np.zeros((1, len(cols)), dtype=bool), left_out[:-1]])
        grid.entries_local[:] += np.where(left_before & valued, local, 0.0) @ by_code
    return grid


def _empty(*, base: str, today: date, first: str | None) -> ChartData:
    return ChartData(
        base_currency=base, as_of=today.isoformat(), first_date=first, ranges={key: [] for key in RANGES},
        sparklines={}, allocation=Allocation(total="0.00", by_instrument=[], by_asset_class=[], by_currency=[]),
        warnings=[],
    )


def _replay(inputs: ChartInputs, *, ids: np.ndarray, first: date) -> _Replay:
    """Replay every transaction once through the average-cost engine, amounts in the base currency at the
    rate of the transaction's own date; keep the state after each (instrument, date)."""
    positions: dict[int, Position] = {}
    after: dict[tuple[int, int], tuple[float, float]] = {}
    missing: dict[int, set[str]] = {}
    realized: list[tuple[int, float]] = []
    for tx in inputs.transactions:
        column = int(np.searchsorted(ids, tx.instrument_id))
        rate = _rate_on(inputs.fx.get(tx.currency), on=tx.date)
        if rate is None:
            # NaN flows through the engine's arithmetic: the cost basis stays unknown until the position is
            # closed (the engine resets it to zero then), without re-implementing that rule here.
            missing.setdefault(column, set()).add(tx.currency)
            rate = NAN
        position = positions.setdefault(tx.instrument_id, Position(instrument_id=tx.instrument_id))
        # Zeroed before each transaction, so the engine leaves this one's gain alone in it (a NaN from an
        # earlier sell without a rate does not spread to later ones). Nothing else here reads it.
        position.realized_gain = Decimal(0)
        position_apply(position, _TxInBase(instrument_id=tx.instrument_id, type=tx.type, date=tx.date,
                                           quantity=tx.quantity, price=tx.price * rate, fee=tx.fee * rate))
        # Later transactions of the same day overwrite: the chart shows the end-of-day state.
        after[(column, (tx.date - first).days)] = (float(position.quantity), float(position.cost_basis))
        if position.realized_gain:
            realized.append(((tx.date - first).days, float(position.realized_gain)))
    keys = sorted(after)  # (column, day): the order _StepRows needs
    states = np.array([after[key] for key in keys], dtype="f8").reshape(-1, 2)
    return _Replay(
        columns=np.array([key[0] for key in keys], dtype="i8"),
        days=np.array([key[1] for key in keys], dtype="i8"),
        quantities=states[:, 0],
        costs=states[:, 1],
        missing_currencies=missing,
        realized_days=np.array([day for day, _ in realized], dtype="i8"),
        realized_gains=np.array([gain for _, gain in realized], dtype="f8"),
    )


def _rate_on(series: FxSeries | None, *, on: date) -> Decimal | None:
    """The latest rate on or before `on`, exactly as stored (Decimal), or None."""
    if series is None:
        return None
    at = int(np.searchsorted(series.dates, np.datetime64(on, "D"), side="right")) - 1
    return series.rates[at] if at >= 0 else None


def _rates_by_day(series: FxSeries | None, *, days: np.ndarray) -> np.ndarray:
    """The rate of each day, carried forward from the last stored one; NaN before the first (or with none)."""
    if series is None or not len(series.dates):
        return np.full(len(days), np.nan)
    rates = np.array([float(rate) for rate in series.rates])
    at = np.searchsorted(series.dates, days, side="right") - 1
    return np.where(at >= 0, rates[np.maximum(at, 0)], np.nan)


class _StepRows:
    """Rows sorted by (column, day) — states after transactions, or closes — looked up as step functions:
    for each day and column, the last row of that column dated on or before the day.

    One np.searchsorted over a key that orders rows by column then day: the answer for (day, column) is the
    last key not above (column, day), valid when it belongs to the same column. Rows before day 0 count as
    day -1 (carried into the first days); rows after the last day are ignored.
    """

    def __init__(self, *, columns: np.ndarray, days: np.ndarray, n_days: int) -> None:
        self.n_days = n_days
        self.stride = n_days + 1
        self.columns = columns
        keys = columns * self.stride + np.clip(days, -1, None) + 1
        # A row after the last day would answer the next column's queries: move it past all of its own.
        self.keys = np.where(days < n_days, keys, (columns + 1) * self.stride)

    def last_index(self, *, columns: np.ndarray) -> np.ndarray:
        """(days × columns) indices into the rows, -1 where the column has no row yet."""
        # Queries in ascending order (column-major) keep the binary searches cache-friendly.
        queries = columns[:, None] * self.stride + np.arange(1, self.n_days + 1)[None, :]
        found = np.searchsorted(self.keys, queries, side="right") - 1
        if len(self.columns):
            found = np.where(self.columns[np.maximum(found, 0)] == columns[:, None], found, -1)
        return found.T


def _gaps(mask: np.ndarray) -> np.ndarray:
    """Per column of a (days × columns) mask: how many days are set, the first and the last one."""
    count = mask.sum(axis=0)
    first = np.argmax(mask, axis=0)
    last = mask.shape[0] - 1 - np.argmax(mask[::-1], axis=0)
    return np.stack([count, first, last])


def _gap_warnings(*, gaps: np.ndarray, days: np.ndarray, base: str, code: str, what: str,
                  instruments: list[Instrument], currencies: list[str]) -> list[ChartWarning]:
    warnings = []
    for col in np.flatnonzero(gaps[0]):
        symbol, currency = instruments[col].symbol, currencies[col]
        count, start, end = (int(n) for n in gaps[:, col])
        start_day, end_day = str(days[start]), str(days[end])
        warnings.append(ChartWarning(
            code=code, symbol=symbol, currency=currency, start=start_day, end=end_day, days=count,
            message=f"No {currency}/{base} rate: {symbol} {what} on {count} day(s) from {start_day} to {end_day}.",
        ))
    return warnings


def _money(amount: float) -> str:
    """Cents, rounded half-even from the float64 result (exact to the cent for any realistic portfolio);
    + 0.0 turns a rounded -0.0 into 0.0."""
    return f"{round(amount, 2) + 0.0:.2f}"


def _price(close: float) -> str:
    """A close at the stored precision (6 places), trailing zeros dropped: 101.5 not 101.500000."""
    return f"{close:.6f}".rstrip("0").rstrip(".")


def _points(*, days: np.ndarray, value: np.ndarray, invested: np.ndarray) -> list[SeriesPoint]:
    dates = np.datetime_as_string(days, unit="D").tolist()
    return [
        SeriesPoint(date=day, value=_money(v), invested=_money(c))
        for day, v, c in zip(dates, value.tolist(), invested.tolist(), strict=True)
    ]


def _months_before(day: date, months: int) -> date:
    """The same day `months` earlier, clamped to the month's end (31 March - 1 month = 29 February)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    next_month = date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    return date(year, month + 1, min(day.day, (next_month - timedelta(days=1)).day))


def _range_start(*, key: str, today: date, first: date) -> int:
    """Index of the range's first day in the daily series (0 when the range reaches before the first day)."""
    if key == "MAX":
        return 0
    start = date(today.year, 1, 1) if key == "YTD" else _months_before(today, RANGE_MONTHS[key])
    return max(0, (start - first).days)


def _thin(points: list[SeriesPoint]) -> list[SeriesPoint]:
    """Downsample per the rule at the top of this module."""
    if len(points) <= DAILY_POINTS_MAX:
        return points
    step = 7 * ceil(len(points) / (7 * THINNED_POINTS_MAX))
    kept = points[::-step][::-1]  # counted back from the last day
    return kept if kept[0] is points[0] else [points[0], *kept]


def _sparklines(inputs: ChartInputs, *, ids: np.ndarray, instruments: list[Instrument], columns: np.ndarray,
                today: date) -> dict[str, list[SparkPoint]]:
    """The stored closes of each held instrument over the last months, thinned to at most
    SPARKLINE_POINTS_MAX (every n-th close counted back from the latest, so the latest is always there)."""
    since = np.datetime64(_months_before(today, SPARKLINE_MONTHS), "D")
    until = np.datetime64(today, "D")
    lines: dict[str, list[SparkPoint]] = {}
    # Price rows are sorted by instrument: each instrument's rows are one slice.
    bounds = np.searchsorted(inputs.prices.instrument_ids, np.stack([ids[columns], ids[columns] + 1]))
    for col, lo, hi in zip(columns.tolist(), *bounds.tolist(), strict=True):
        dates, closes = inputs.prices.dates[lo:hi], inputs.prices.closes[lo:hi]
        window = (dates >= since) & (dates <= until)
        dates, closes = dates[window], closes[window]
        step = max(1, ceil(len(dates) / SPARKLINE_POINTS_MAX))
        dates, closes = dates[::-step][::-1], closes[::-step][::-1]
        lines[instruments[col].symbol] = [
            SparkPoint(date=str(day), close=_price(close))
            for day, close in zip(np.datetime_as_string(dates, unit="D"), closes.tolist(), strict=True)
        ]
    return dict(sorted(lines.items()))


def _weights(values: list[float]) -> list[str]:
    """Fractions of the total rounded to WEIGHT_PLACES that add up to exactly 1 (largest remainder)."""
    total = sum(values)
    if total <= 0:
        return [f"{0:.{WEIGHT_PLACES}f}" for _ in values]
    units = 10**WEIGHT_PLACES
    shares = [value / total * units for value in values]
    rounded = [floor(share) for share in shares]
    by_remainder = sorted(range(len(values)), key=lambda k: rounded[k] - shares[k])
    for k in by_remainder[: units - sum(rounded)]:
        rounded[k] += 1
    return [f"{Decimal(n).scaleb(-WEIGHT_PLACES):.{WEIGHT_PLACES}f}" for n in rounded]


def _allocation(*, instruments: list[Instrument], values: np.ndarray) -> Allocation:
    """Today's market value in the base currency by instrument, asset class and currency; instruments that
    cannot be valued today (no close, no rate) are left out, as the warnings say."""
    valued = [(instruments[col], float(values[col])) for col in np.flatnonzero(~np.isnan(values))]
    valued.sort(key=lambda item: (-item[1], item[0].symbol))
    by_class: dict[str, float] = {}
    by_currency: dict[str, float] = {}
    for instrument, value in valued:
        by_class[instrument.asset_class] = by_class.get(instrument.asset_class, 0.0) + value
        major = currency_major(instrument.currency)[0]
        by_currency[major] = by_currency.get(major, 0.0) + value
    classes = sorted(by_class.items(), key=lambda item: (-item[1], item[0]))
    currencies = sorted(by_currency.items(), key=lambda item: (-item[1], item[0]))
    return Allocation(
        total=_money(sum(value for _, value in valued)),
        by_instrument=[
            InstrumentSlice(symbol=i.symbol, name=i.name, asset_class=i.asset_class, currency=i.currency,
                            value=_money(value), weight=weight)
            for (i, value), weight in zip(valued, _weights([v for _, v in valued]), strict=True)
        ],
        by_asset_class=[
            AssetClassSlice(asset_class=name, value=_money(value), weight=weight)
            for (name, value), weight in zip(classes, _weights([v for _, v in classes]), strict=True)
        ],
        by_currency=[
            CurrencySlice(currency=name, value=_money(value), weight=weight)
            for (name, value), weight in zip(currencies, _weights([v for _, v in currencies]), strict=True)
        ],
    )
