"""A portfolio's performance over 1D, WTD, MTD, YTD, 1Y, 5Y, MAX and each calendar year, from loaded inputs.

Pure: no database access. It measures the very series the chart draws (charts.compute.chart_series_compute:
same observations, carry-forward and left-out rules), so the chart and these figures never disagree.

Money is Decimal from Decimal inputs and rounded half-even to cents once, when written out: the values at the
range's bounds are the exact valuation of those days (portfolio.holdings.portfolio_value_compute, the
dashboard's own), and flows, fees, dividends, gains and invested capital are exact sums of the transactions'
amounts. Rates (TWR, XIRR, percentages) are computed in float64 from those figures (interior days of the TWR
from the chart's float64 value line) and written with 6 decimals (0.123456 = 12.3456 %).

Definitions (docs/holdings.md, "Performance", says the same for users):

- A range runs from the end of its *base day* b (its starting value V_b) to the end of its last day e, and
  counts the transactions dated b+1..e. e is `today`, or 31 December for a past calendar year. b is:
  1D yesterday; WTD the Sunday before this ISO week's Monday; MTD the last day of the previous month; YTD and
  a calendar year 31 December of the year before; 1Y / 5Y the same day 12 / 60 months before `today` (end of
  month clamped, like the chart's ranges); MAX the day before the first transaction. A base day before the
  first transaction has V_b = 0 and the range starts at the first transaction, as MAX does.
- Cash flows, each transaction at its own trade price and its own date's rate (from the portfolio into the
  investor's pocket is an outflow): a buy is an inflow of quantity × price + fee; a sell an outflow of
  quantity × price − fee; a dividend an outflow of quantity × price − the tax withheld (its fee); a standalone
  fee an inflow of the fee.
- Positions left out of the value (held with no price observation yet, or no FX rate — the chart's warnings
  name them) are left out of performance too: a buy or sell of such a position on a day it is left out (or
  was the day before) counts only its fee — the cash went into something the value cannot see — and when it
  comes into the value its value that day counts as an inflow. Fees and dividends are cash and always count.
  An amount in a currency with no rate on its date is left out (never converted at 1), as in the chart.
- value: V_e. total_investment: invested capital on e (the chart's invested line: the average-cost basis
  of the positions held, fees included, portfolio.holdings).
- net_performance = V_e − V_b − (inflows − outflows); gross_performance = net_performance + fees, i.e.
  V_e − V_b − buys + sells + dividends at quantity × price. Dividends are part of the performance (total
  return) and also reported alone. fees: every fee dated in the range (trading fees, withholding tax,
  standalone fees); dividends: gross, quantity × price.
- gross/net_performance_percent = performance / time-weighted invested capital, the mean of the daily
  invested capital over the range's days (each calendar day from max(b+1, first transaction) to e weighs
  the same); None when that mean is 0.
- time_weighted_return = Π (1 + r_d) − 1 over the range's days, with the day's net flow F_d = inflows_d −
  outflows_d: r_d = V_d / (V_{d−1} + F_d) − 1 when money came in (F_d > 0), (V_d − F_d) / V_{d−1} − 1 when it
  went out. V_d is the value at the end of day d, after its trades: money that comes in on a day is at work
  from the day's start, money that goes out until the day's end, at their trade prices; the day's flows are
  netted first, so money moved within the portfolio (a buy paid from its cash: stock in, cash out) is no flow.
  Days with V_{d−1} + max(F_d, 0) ≤ 0, or with V_{d−1} ≤ 0 and V_d ≤ 0 (nothing at work: a fee paid with
  nothing held is money lost, not a −100 % return of what never worked) are skipped; None when every day is.
  (With the day's money in counted at its end instead, a day that brings 10,000 into a portfolio holding a
  penny would divide the day's gain on the 10,000 by the penny.)
- time_weighted_return_without_fx: the same, with the value and the flows of every currency converted at
  one rate per currency — its rate on the range's first day (max(b+1, first transaction)), or its first
  rate after it — instead of each day's: the return without the currency effect. The same amounts are
  left out as in the real series.
- money_weighted_return: the annualised internal rate of return (XIRR, 365-day years) of −V_b at b, the
  net flow of each day d (−inflows_d + outflows_d) at d, and +V_e at e; None when it is undefined (all
  flows of one sign, no time between them) or not finite. Solved as a continuous rate ρ (r = e^ρ − 1) by
  Newton's method safeguarded with bisection, inside the sign change nearest 0 on a grid of rates.
  money_weighted_return_period is the same rate over the time the money was at work, not annualised:
  e^(ρ T) − 1 with T the range's days whose previous day's value is above 0 (the flows are dated: a first
  buy's day adds no time), in years: a first buy inside the range, a sale out of everything or the months
  between two round trips leave their days without money out — the range's length when money was in
  throughout (a 1D range's annualised rate is astronomically large; this one reads as the day's return).
- realized_gain: the gains of the sells dated in the range (average cost, fees deducted); unrealized_gain:
  on e, value − cost basis of the positions counted in the value whose cost is known.
- investment_by_month / _by_year: net amount invested in each period since the first transaction — buys
  at cost minus sells at their average cost, i.e. the change of the invested capital over the period.
"""

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, localcontext
from itertools import accumulate, chain, compress
from operator import attrgetter, is_, is_not
from typing import NotRequired, TypedDict

import numpy as np

from charts.benchmark import BenchmarkLive
from charts.compute import (
    Book,
    ChartSeries,
    Flows,
    Snapshot,
    chart_series_compute,
    inputs_digest,
    performance_range_bounds,
    text_lines,
)
from charts.selectors import ChartInputs
from portfolio.holdings import EXACT_SUMS, ZERO, money_format, ratio_format
from portfolio.models import TransactionType
from portfolio.ranges import PERFORMANCE_RANGES

RATE_PLACES = 6
DAYS_PER_YEAR = 365.0  # XIRR's year, as spreadsheets count it

# XIRR search: continuous rates on a grid 0, ±1e-4, ±2e-4, ±4e-4, … (bracketing the root nearest 0), capped
# where ρ × span would overflow exp() anyway; then at most XIRR_ITERATIONS safeguarded Newton steps.
XIRR_GRID_START = 1e-4
XIRR_EXPONENT_MAX = 700.0
XIRR_ITERATIONS = 200
XIRR_TOLERANCE = 1e-13


class RangePerformance(TypedDict):
    start: str | None  # first day counted: max(b + 1, first transaction)
    end: str | None
    value_start: str
    value: str
    total_investment: str
    time_weighted_invested_capital: str
    gross_performance: str
    gross_performance_percent: str | None
    net_performance: str
    net_performance_percent: str | None
    time_weighted_return: str | None
    time_weighted_return_without_fx: str | None
    money_weighted_return: str | None  # annualised
    money_weighted_return_period: str | None  # the same rate over the time money was in, not annualised
    dividends: str
    fees: str
    realized_gain: str
    unrealized_gain: str


class PeriodInvestment(TypedDict):
    period: str  # YYYY-MM or YYYY
    investment: str


class Performance(TypedDict):
    base_currency: str
    as_of: str
    ranges: dict[str, RangePerformance]
    investment_by_month: list[PeriodInvestment]
    investment_by_year: list[PeriodInvestment]


class XirrFlows(TypedDict):
    """A range's XIRR cash flows but its final value (times in years from its base day)."""

    times: list[float]
    amounts: list[float]
    span: float  # the range's length in years: when the final value counts


class WithoutFx(TypedDict):
    """The return without the currency effect of a range ending today, as its last factor needs it."""

    twr: float | None
    rates: dict[str, str]  # currency code -> the range's fixed rate, exact
    value: float  # today's value at those rates, as generated
    previous: float  # yesterday's value at those rates
    flow: float  # today's inflows − outflows at those rates


class RangeLive(TypedDict):
    """What a range ending today needs to follow today's live value V (charts.live): its figures that move
    one for one with V, exact, and its time-weighted return (unrounded), whose last factor moves with V."""

    gross: str
    net: str
    unrealized: str
    capital: str
    twr: float | None
    previous: float  # yesterday's value, as this range's TWR counts it
    flow: float  # today's inflows − outflows (today's factor: twr_day_factor)
    years_invested: float  # the period the money-weighted return compounds over (_years_invested)
    without_fx: WithoutFx
    flows: NotRequired[XirrFlows]  # moved by charts.services to a part of its own, read by performance only


class LiveBase(TypedDict):
    """Today's point as the generation valued it — today's closes left out — and what the figures ending
    today need to be moved to the live value (charts.live)."""

    date: str
    value: str  # exact
    previous: float  # yesterday's value, as the benchmark comparison's TWR counts it
    flow: float  # today's inflows − outflows (today's factor: twr_day_factor)
    # The instruments held today that today's value left out (no price or rate before today's closes): their
    # "no price" warning goes once the live valuation values them.
    unvalued: list[int]
    # The instruments held yesterday but left out of its value (instrument id as text -> the value in the base
    # currency and in its own the generation booked as money in today when it valued it today, else "0"): a
    # generation counting today's quotes books each one's value today as money in (an entry), not as a gain.
    entries: dict[str, list[str]]
    # Today's money in and out, exact (the money-weighted return's last flow is made of them: charts.live adds an
    # entry to the money in before it is converted, as a full generation sums it)
    money_today: list[str]
    ranges: dict[str, RangeLive]
    benchmark: NotRequired[BenchmarkLive]  # charts.services adds it for a portfolio with a benchmark
    sparklines: NotRequired[list[int]]  # the instrument id of each sparkline (charts.services)


def performance_compute(inputs: ChartInputs, *, today: date, series: ChartSeries | None = None) -> Performance:
    """`series`: chart_series_compute's result when the caller already has it (the chart generation does)."""
    return performance_with_live_compute(inputs, today=today, series=series)[0]


def performance_with_live_compute(inputs: ChartInputs, *, today: date,
                                  series: ChartSeries | None = None) -> tuple[Performance, LiveBase | None]:
    """The performance, and what its ranges ending today need to follow the live value (None without a
    series)."""
    base = inputs.base_currency
    series = series or chart_series_compute(inputs, today=today)
    if series is None:
        return Performance(base_currency=base, as_of=today.isoformat(),
                           ranges={key: _nothing() for key in PERFORMANCE_RANGES},
                           investment_by_month=[], investment_by_year=[]), None

    days, first = series.days, series.first
    daily = _daily_build(inputs, series=series)
    bounds = {key: performance_range_bounds(key=key, today=today) for key in PERFORMANCE_RANGES}
    for year in range(first.year, today.year + 1):
        base_day, end_day = date(year - 1, 12, 31), min(date(year, 12, 31), today)
        if _traded_in(inputs.transactions, first_day=base_day + timedelta(days=1), end_day=end_day) \
                or _held(daily, first=first, base_day=base_day, end_day=end_day):
            bounds[str(year)] = (base_day, end_day)
    measured = _ranges_measure(daily, first=first, today=today, bounds=bounds)
    last = len(days) - 1
    live = LiveBase(
        date=today.isoformat(), value=str(daily.snapshots[last].valued.total_value),
        previous=float(daily.value[last - 1] if last > 0 else 0.0),
        flow=float(daily.inflows_by_day[last] - daily.outflows_by_day[last]),
        unvalued=[pk for pk, position in daily.snapshots[last].valued.positions.items() if position.value is None],
        entries=_entries_of_today(series, last=last),
        money_today=[str(daily.inflows.between(last - 1, last)), str(daily.outflows.between(last - 1, last))],
        ranges={key: measured[key][1] for key, (_, e) in bounds.items() if e == today},
    )
    return Performance(
        base_currency=base,
        as_of=today.isoformat(),
        ranges={key: figures for key, (figures, _) in measured.items()},
        investment_by_month=_investment_by(days=days, invested=series.invested, unit="M"),
        investment_by_year=_investment_by(days=days, invested=series.invested, unit="Y"),
    ), live


def _entries_of_today(series: ChartSeries, *, last: int) -> dict[str, list[str]]:
    """LiveBase.entries: the positions left out of yesterday's value (still held), each with the entry today's
    generation booked for it (valued today at a trade or an earlier close), or 0 (still left out)."""
    if last == 0:
        return {}
    booked = {entry.column: entry for entry in series.entries if entry.day == last}
    return {str(int(series.ids[column])): ([str(booked[column].value), str(booked[column].value_local)]
                                           if column in booked else ["0", "0"])
            for column in np.flatnonzero(series.grid.left_out[last - 1]).tolist()}


class _Sums:
    """Exact running totals of one kind of amount, day by day: kept at the days an amount changes them (a few hundred
    for ten years of trades), each day's found by a binary search — not a Decimal per day (ten years of them, for
    each kind of money, cost milliseconds to add up and megabytes to keep). Never changed once made: those made of
    the book alone are kept with it (Book.made) for the generations that take it again."""

    def __init__(self, by_day: dict[int, Decimal]) -> None:
        """by_day: each day's exact total (days without amounts absent)."""
        self.at = sorted(by_day)  # the days with an amount
        amounts = [by_day[day] for day in self.at]
        self.floats = list(map(float, amounts))
        with localcontext(EXACT_SUMS):
            self.through = list(accumulate(amounts))  # everything dated up to each of them
        self.levels: list[Decimal] | None = None
        self.made_from: list[Decimal] = []  # of_levels: the levels it was made of

    def by_day(self, n_days: int) -> np.ndarray:
        """Each day's own total, as float64."""
        days = np.zeros(n_days)
        days[self.at] = self.floats
        return days

    @classmethod
    def of_levels(cls, levels: list[Decimal], *, kept: "_Sums | None" = None) -> "_Sums":
        """Running totals of one amount per day (the invested capital of each day), a step function: kept at the
        days its level changes, with the total of the days before each. `kept`: made of earlier levels; when
        `levels` begins with the very objects it was made of (the book taken again, its invested line carried
        over a new day), only the days after them are looked at."""
        sums = cls({})
        sums.made_from, sums.levels, before = levels, [], ZERO
        start, shared = 1, False
        if kept is not None and len(kept.made_from) <= len(levels) and all(map(is_, levels, kept.made_from)):
            start, shared = max(len(kept.made_from), 1), True
            sums.at, sums.levels, sums.through = kept.at, kept.levels, kept.through  # shared until one is added
            before = kept.through[-1] if kept.at else ZERO
        # A level carried over days is the same Decimal: only the days whose level is another object than the day
        # before's can change it (found in C, not a Python step per day), and only those are compared by value.
        moved = compress(range(start, len(levels)), map(is_not, levels[start:], levels[start - 1:-1]))
        with localcontext(EXACT_SUMS):
            for day in chain([0] if levels and not sums.at else [], moved):
                level = levels[day]
                if not sums.at or level != sums.levels[-1]:
                    if shared:
                        sums.at, sums.levels, sums.through = sums.at.copy(), sums.levels.copy(), sums.through.copy()
                        shared = False
                    if sums.at:
                        before += sums.levels[-1] * (day - sums.at[-1])
                    sums.at.append(day)
                    sums.levels.append(level)
                    sums.through.append(before)  # the total of the days before this one
        return sums

    def _upto(self, day: int) -> Decimal:
        """Everything dated on or before `day` (-1: nothing)."""
        k = bisect_right(self.at, day)
        if not k:
            return ZERO
        if self.levels is None:
            return self.through[k - 1]
        return self.through[k - 1] + self.levels[k - 1] * (day - self.at[k - 1] + 1)

    def between(self, b: int, e: int) -> Decimal:
        """Amounts dated b+1 .. e (b = -1: from the first day)."""
        with localcontext(EXACT_SUMS):
            return self._upto(e) - self._upto(b)


@dataclass(frozen=True)
class _Daily:
    """Everything a range needs, per day from the first transaction to today (base currency unless said)."""

    value: np.ndarray  # float64: the chart's value line
    invested: np.ndarray  # float64, for telling which years had anything held
    invested_sums: _Sums  # the invested capital, added up day after day (time-weighted capital)
    snapshots: dict[int, Snapshot]  # the exact valuation of today and of every range's bounds
    inflows: _Sums
    outflows: _Sums
    fees: _Sums
    dividends: _Sums
    realized: _Sums
    inflows_by_day: np.ndarray  # float64, for the TWR and XIRR
    outflows_by_day: np.ndarray
    codes: list[str]  # every currency code of the instruments and the transactions
    rates: np.ndarray  # (days × codes) float64, each day's rate (NaN before a currency's first)
    value_local: np.ndarray  # (days × codes), in each code's currency
    inflows_local: np.ndarray  # (days × codes), in each code's currency
    outflows_local: np.ndarray
    series: ChartSeries


def _daily_build(inputs: ChartInputs, *, series: ChartSeries) -> _Daily:
    days = series.days
    n_days = len(days)
    flows = series.replay.flows
    flow_days = np.array(flows.days, dtype="i8")
    flow_columns = np.array(flows.columns, dtype="i8")
    # A trade in a position the value cannot see (today or yesterday) exchanges cash for nothing visible:
    # only its fee counts; the position counts as an inflow at its value on the day it comes in.
    left_out = series.grid.left_out
    hidden = left_out[flow_days, flow_columns] | (
        (flow_days > 0) & left_out[np.maximum(flow_days - 1, 0), flow_columns])
    seen = ~hidden
    made, seen_key = series.book.made, seen.tobytes()
    totals = made.get(("flows", seen_key))
    if totals is None:
        # The latest pattern of flows seen only: what is kept stays the size it was counted at.
        for key in [key for key in made if isinstance(key, tuple) and key[0] == "flows"]:
            del made[key]
        money_in, money_out, fees, dividends, gains, local_in, local_out = _flow_totals(flows, seen=seen.tolist())
        totals = made[("flows", seen_key)] = (money_in, _Sums(money_in), _Sums(money_out), _Sums(fees),
                                              _Sums(dividends), _Sums(gains), local_in, local_out)
    money_in, inflows, outflows, fees, dividends, gains, local_in, local_out = totals
    if series.entries:
        money_in = dict(money_in)  # the entries are added: the book's own stays the flows'
        with localcontext(EXACT_SUMS):
            for entry in series.entries:
                money_in[entry.day] = money_in.get(entry.day, ZERO) + entry.value
        inflows = _Sums(money_in)
    if _CODES not in made:
        made[_CODES] = _codes_of(inputs, series=series)
    codes, flow_codes = made[_CODES]
    code_index = {code: k for k, code in enumerate(codes)}

    shape = (n_days, len(codes))
    inflows_local, outflows_local = np.zeros(shape), np.zeros(shape)
    np.add.at(inflows_local, (flow_days, flow_codes), local_in)
    np.add.at(outflows_local, (flow_days, flow_codes), local_out)
    for entry in series.entries:
        inflows_local[entry.day, code_index[series.instruments[entry.column].currency]] += float(entry.value_local)

    # Kept with the book: the next generation taking it again looks only at the days its invested line grew by.
    invested_sums = made[_INVESTED_SUMS] = _Sums.of_levels(series.invested, kept=made.get(_INVESTED_SUMS))
    return _Daily(
        value=series.grid.value, invested=series.invested_floats, invested_sums=invested_sums,
        snapshots=series.snapshots, inflows=inflows, outflows=outflows, fees=fees, dividends=dividends,
        realized=gains, inflows_by_day=inflows.by_day(n_days), outflows_by_day=outflows.by_day(n_days),
        codes=codes,
        # Each day's rate per code, NaN before a currency's first rate; amounts in such a code are left out.
        rates=np.stack([series.rates.by_day(code, days=days) for code in codes], axis=1),
        value_local=series.grid.value_local @ _code_map(series.codes, codes),
        inflows_local=inflows_local, outflows_local=outflows_local, series=series,
    )


def _codes_of(inputs: ChartInputs, *, series: ChartSeries) -> tuple[list[str], np.ndarray]:
    """Every currency code of the instruments and the transactions, and each flow's (its index among them): of the
    book alone, kept with it (Book.made, _CODES)."""
    codes = sorted(set(series.codes) | {tx.currency for tx in inputs.transactions})
    code_index = {code: k for k, code in enumerate(codes)}
    return codes, np.array([code_index[currency] for currency in series.replay.flows.currencies], dtype="i8")


def _flow_totals(flows: Flows, *, seen: list[bool]) -> tuple:
    """Per kind of money — in, out, fees, dividends, realized gains — day -> its exact total in the base currency
    (an amount without a rate, NaN, left out, never converted at 1); and per flow, its money in and out in its own
    currency (for the return without the currency effect). `seen`: per flow, whether the value sees its position
    (a trade in one it cannot, today or yesterday, exchanges cash for nothing visible: only its fee counts, and
    the position counts as money in at its value on the day it comes in: an entry). A function of the flows and
    `seen` alone: kept with the book (Book.made) for the generations that take it again."""
    money_in: dict[int, Decimal] = {}
    money_out: dict[int, Decimal] = {}
    fees: dict[int, Decimal] = {}
    dividends: dict[int, Decimal] = {}
    gains: dict[int, Decimal] = {}
    # Per flow, in its own currency (for the return without the currency effect).
    local_in = np.zeros(len(flows))
    local_out = np.zeros(len(flows))
    buy, sell, dividend, fee_only = (str(kind) for kind in (
        TransactionType.BUY, TransactionType.SELL, TransactionType.DIVIDEND, TransactionType.FEE))
    with localcontext(EXACT_SUMS):
        for k, (day, kind, amount_local, fee_local, effect, is_seen) in enumerate(zip(
                flows.days, flows.types, flows.amounts_local, flows.fees_local, flows.effects, seen, strict=True)):
            amount, fee = effect.amount, effect.fee
            into = out = None
            if kind == buy:
                into = amount + fee if is_seen else fee
                local_in[k] = amount_local + fee_local if is_seen else fee_local
            elif kind == sell:
                if is_seen:
                    out = amount - fee
                    local_out[k] = amount_local - fee_local
                else:
                    into = fee
                    local_in[k] = fee_local
                if not effect.realized_gain.is_nan():
                    gains[day] = gains.get(day, ZERO) + effect.realized_gain
            elif kind == dividend:
                out = amount - fee
                local_out[k] = amount_local - fee_local
                if not amount.is_nan():
                    dividends[day] = dividends.get(day, ZERO) + amount
            elif kind == fee_only:
                into = fee
                local_in[k] = fee_local
            if into is not None and not into.is_nan():
                money_in[day] = money_in.get(day, ZERO) + into
            if out is not None and not out.is_nan():
                money_out[day] = money_out.get(day, ZERO) + out
            if fee and not fee.is_nan():
                fees[day] = fees.get(day, ZERO) + fee
    return money_in, money_out, fees, dividends, gains, local_in, local_out


def twr_growth_index(inputs: ChartInputs, *, series: ChartSeries) -> np.ndarray:
    """Per day, what 1 invested on the first day has grown to at the time-weighted return (the same daily
    factors as `_twr`; a day with nothing at work counts as 1). The return between two days is
    growth[b] / growth[a] − 1: how the benchmark comparison draws the portfolio's line."""
    daily = _daily_build(inputs, series=series)
    factors, _ = _twr_factors(value_start=0.0, values=daily.value, inflows=daily.inflows_by_day,
                              outflows=daily.outflows_by_day)
    return np.cumprod(np.nan_to_num(factors, nan=1.0))


def _code_map(source: list[str], target: list[str]) -> np.ndarray:
    """(source × target) 0/1 matrix moving columns of one list of currency codes to another."""
    mapping = np.zeros((len(source), len(target)))
    mapping[np.arange(len(source)), [target.index(code) for code in source]] = 1.0
    return mapping


def _in_base(amounts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Per day, amounts converted at each day's rate; a code without a rate (NaN) is left out."""
    return (amounts * np.nan_to_num(rates, nan=0.0)).sum(axis=1)


_date_of = attrgetter("date")


def _traded_in(transactions: list, *, first_day: date, end_day: date) -> bool:
    """A transaction is dated first_day .. end_day (the transactions in date order: one binary search, not a look at
    each of thousands)."""
    k = bisect_left(transactions, first_day, key=_date_of)
    return k < len(transactions) and transactions[k].date <= end_day


def _held(daily: _Daily, *, first: date, base_day: date, end_day: date) -> bool:
    """Something was held (valued or at cost) at the start of the range or on one of its days."""
    lo, hi = max((base_day - first).days, 0), (end_day - first).days + 1
    return bool(np.any(daily.value[lo:hi] != 0) or np.any(daily.invested[lo:hi] != 0))


@dataclass(frozen=True)
class _RangeInputs:
    """Everything one range's figures are measured from (_range_measure reads nothing else), gathered from the
    daily series (_range_inputs): two ranges with equal inputs have equal figures, so a range that ended before
    today is taken again from the last generation while its inputs are the same (_PAST_RANGES, by digest)."""

    first_counted: date  # max(b + 1, first transaction)
    end_day: date
    length: int  # e − b: the range's days
    value_start: Decimal  # V_b, exact (0 when b is before the first transaction)
    value_end: Decimal  # V_e, exact
    cost_end: Decimal
    unrealized_end: Decimal
    money_in: Decimal  # the exact sums of the amounts dated b+1 .. e
    money_out: Decimal
    fees: Decimal
    dividends: Decimal
    realized: Decimal
    capital: Decimal  # the time-weighted invested capital
    start_fixed: Decimal | None  # V_b at the fixed rates (None: b before the first transaction)
    end_fixed: Decimal  # V_e at the fixed rates
    codes: tuple[str, ...]
    fixed_exact: dict[str, Decimal | None]  # code -> its fixed rate, exact (codes with none in the range absent)
    fixed: np.ndarray  # per code, the fixed rate as float64 (NaN: none in the range)
    # Per day b+1 .. e (float64): the value line (its last day made the exact V_e when measured), the flows, each
    # code's rate (NaN before its first), and the value and flows in each code's currency.
    values: np.ndarray
    inflows: np.ndarray
    outflows: np.ndarray
    rates: np.ndarray
    value_local: np.ndarray
    inflows_local: np.ndarray
    outflows_local: np.ndarray

    def digest(self) -> bytes:
        """inputs_digest of every field (the arrays' shapes follow from the length and the codes)."""
        exact = (self.value_start, self.value_end, self.cost_end, self.unrealized_end, self.money_in, self.money_out,
                 self.fees, self.dividends, self.realized, self.capital, self.start_fixed, self.end_fixed)
        return inputs_digest(
            text_lines([self.first_counted.isoformat(), self.end_day.isoformat(), str(self.length),
                        *map(str, exact), *self.codes]),
            text_lines(f"{code} {rate}" for code, rate in self.fixed_exact.items()),
            *(np.ascontiguousarray(array).tobytes() for array in (
                self.fixed, self.values, self.inflows, self.outflows, self.rates, self.value_local,
                self.inflows_local, self.outflows_local)))


# Book.made's keys of the running totals of the invested line (_Sums.of_levels) and of the currency codes (_codes_of).
_INVESTED_SUMS = "invested_sums"
_CODES = "codes"
# Book.made's key of the figures of the ranges that ended before today, by their inputs' digest: after a new day's
# closes the past calendar years are measured from the same inputs (about half the ranges of a 10-year portfolio).
_PAST_RANGES = "past_ranges"


def past_ranges_kept(book: Book) -> int:
    """How many ranges' figures the book keeps (its generation's ranges that ended before today)."""
    return len(book.made.get(_PAST_RANGES, ()))


def _ranges_measure(daily: _Daily, *, first: date, today: date,
                    bounds: dict[str, tuple[date, date]]) -> dict[str, tuple[RangePerformance, RangeLive | None]]:
    """Each range's figures, and for those ending today what they need to follow the live value (None for the
    others: nothing live moves them). A range that ended before today whose inputs are those of one the last
    generation measured (kept with the book) is taken again as it was; the others are measured."""
    made = daily.series.book.made
    kept, past = made.get(_PAST_RANGES, {}), {}
    measured = {}
    for key, (base_day, end_day) in bounds.items():
        inputs = _range_inputs(daily, first=first, base_day=base_day, end_day=end_day)
        if end_day < today:
            digest = inputs.digest()
            figures = past[digest] = kept.get(digest) or _range_measure(inputs)[0]
            measured[key] = (figures, None)
        else:
            measured[key] = _range_measure(inputs)
    made[_PAST_RANGES] = past  # this generation's only: what is kept stays the size it is counted at
    return measured


def _range_inputs(daily: _Daily, *, first: date, base_day: date, end_day: date) -> _RangeInputs:
    b = max((base_day - first).days, -1)  # -1: before the first transaction, where the value is 0
    e = (end_day - first).days
    s = b + 1
    days = slice(s, e + 1)
    start_snapshot = daily.snapshots[b] if b >= 0 else None
    end_snapshot = daily.snapshots[e]
    # Without the currency effect: one rate per code, its first in the range (see the module docstring).
    real = daily.rates[days]
    known_rate = ~np.isnan(real)
    first_known = np.argmax(known_rate, axis=0)
    fixed = np.where(known_rate.any(axis=0), real[first_known, np.arange(real.shape[1])], np.nan)
    fixed_exact = {code: daily.series.rates(code, first + timedelta(days=s + int(first_known[k])))
                   for k, code in enumerate(daily.codes) if known_rate[:, k].any()}
    return _RangeInputs(
        first_counted=first + timedelta(days=s), end_day=end_day, length=e - b,
        value_start=start_snapshot.valued.total_value if start_snapshot else ZERO,
        value_end=end_snapshot.valued.total_value, cost_end=end_snapshot.valued.total_cost,
        unrealized_end=end_snapshot.valued.unrealized_gain,
        money_in=daily.inflows.between(b, e), money_out=daily.outflows.between(b, e), fees=daily.fees.between(b, e),
        dividends=daily.dividends.between(b, e), realized=daily.realized.between(b, e),
        capital=daily.invested_sums.between(b, e) / (e - b),
        start_fixed=_at_fixed_rates(start_snapshot, fixed_exact) if start_snapshot else None,
        end_fixed=_at_fixed_rates(end_snapshot, fixed_exact), codes=tuple(daily.codes), fixed_exact=fixed_exact,
        fixed=fixed, values=daily.value[days], inflows=daily.inflows_by_day[days],
        outflows=daily.outflows_by_day[days], rates=real, value_local=daily.value_local[days],
        inflows_local=daily.inflows_local[days], outflows_local=daily.outflows_local[days])


def _range_measure(inputs: _RangeInputs) -> tuple[RangePerformance, RangeLive]:
    value_start, value_end, fees = inputs.value_start, inputs.value_end, inputs.fees
    with localcontext(EXACT_SUMS):
        net = value_end - value_start - inputs.money_in + inputs.money_out
        gross = net + fees
    capital = inputs.capital

    # The value line inside the range, its ends the exact valuation of b and e.
    values = inputs.values.copy()
    values[-1] = float(value_end)
    inflows, outflows = inputs.inflows, inputs.outflows

    # Without the currency effect: NaN wherever the real rate is NaN, so the very same amounts are left out.
    fixed_by_day = np.where(np.isnan(inputs.rates), np.nan, inputs.fixed)
    values_fixed = _in_base(inputs.value_local, fixed_by_day)
    values_fixed[-1] = float(inputs.end_fixed)
    start_fixed = float(inputs.start_fixed) if inputs.start_fixed is not None else 0.0

    length = inputs.length
    times = np.concatenate([[0.0], np.arange(1, length + 1, dtype="f8")]) / DAYS_PER_YEAR
    amounts = np.concatenate([[-float(value_start)], outflows - inflows])
    span = length / DAYS_PER_YEAR
    rho = _xirr(times=np.append(times, span), amounts=np.append(amounts, float(value_end)))
    invested_years = _years_invested(value_start=float(value_start), values=values)
    twr = _twr(value_start=float(value_start), values=values, inflows=inflows, outflows=outflows)
    inflows_fixed = _in_base(inputs.inflows_local, fixed_by_day)
    outflows_fixed = _in_base(inputs.outflows_local, fixed_by_day)
    twr_fixed = _twr(value_start=start_fixed, values=values_fixed, inflows=inflows_fixed, outflows=outflows_fixed)
    previous_fixed = values_fixed[-2] if len(values_fixed) > 1 else start_fixed
    previous = values[-2] if len(values) > 1 else float(value_start)
    flowing = amounts != 0  # the days without a flow add nothing to the XIRR: kept out of the cache
    live = RangeLive(gross=str(gross), net=str(net), unrealized=str(inputs.unrealized_end),
                     capital=str(capital), twr=twr, years_invested=invested_years,
                     previous=float(previous), flow=float(inflows[-1] - outflows[-1]),
                     flows=XirrFlows(times=times[flowing].tolist(), amounts=amounts[flowing].tolist(), span=span),
                     without_fx=WithoutFx(
                         twr=twr_fixed, value=float(values_fixed[-1]),
                         rates={code: str(rate) for code, rate in inputs.fixed_exact.items() if rate is not None},
                         previous=float(previous_fixed), flow=float(inflows_fixed[-1] - outflows_fixed[-1])))
    return RangePerformance(
        start=inputs.first_counted.isoformat(),
        end=inputs.end_day.isoformat(),
        value_start=money_format(value_start),
        value=money_format(value_end),
        total_investment=money_format(inputs.cost_end),
        time_weighted_invested_capital=money_format(capital),
        gross_performance=money_format(gross),
        gross_performance_percent=ratio_format(gross, capital),
        net_performance=money_format(net),
        net_performance_percent=ratio_format(net, capital),
        time_weighted_return=_rate(twr),
        time_weighted_return_without_fx=_rate(twr_fixed),
        money_weighted_return=_rate(_growth(rho, years=1.0)),
        money_weighted_return_period=_rate(_growth(rho, years=invested_years)),
        dividends=money_format(inputs.dividends),
        fees=money_format(fees),
        realized_gain=money_format(inputs.realized),
        unrealized_gain=money_format(inputs.unrealized_end),
    ), live


def range_live_apply(figures: RangePerformance, base: RangeLive, *, value_then: Decimal, value: Decimal,
                     unrealized: Decimal, local: dict[str, Decimal],
                     flows: XirrFlows | None = None, entry: Decimal = ZERO,
                     entry_local: dict[str, Decimal] | None = None,
                     money_today: tuple[Decimal, Decimal] | None = None) -> RangePerformance:
    """A range ending today moved from the value the generation saw today (`value_then`, today's closes
    left out) to the live `value`: what moves one for one with the value moves by the difference, exactly;
    the TWR's last daily factor is made again with the live value (twr_live), and the return without the
    currency effect's too, from today's live value of each currency (`local`, in that currency) at the
    range's fixed rates; with the range's `flows`, the money-weighted return is solved again with the
    live final value. `entry`: the live value of the positions the generation could not value today (in each
    currency: `entry_local`), money in today as a generation counting today's quotes books it, not a gain."""
    with localcontext(EXACT_SUMS):
        gross = Decimal(base["gross"]) + value - value_then - entry
        net = Decimal(base["net"]) + value - value_then - entry
    capital = Decimal(base["capital"])
    twr = twr_live(base["twr"], previous=base["previous"], flow=base["flow"], value_then=float(value_then),
                   value=float(value), entered=float(entry))
    fixed = base["without_fx"]
    with localcontext(EXACT_SUMS):
        value_fixed = float(sum((amount * Decimal(fixed["rates"][code]) for code, amount in local.items()
                                 if code in fixed["rates"]), ZERO))
        entry_fixed = float(sum((amount * Decimal(fixed["rates"][code]) for code, amount in (entry_local or {}).items()
                                 if code in fixed["rates"]), ZERO))
    twr_fixed = twr_live(fixed["twr"], previous=fixed["previous"], flow=fixed["flow"], value_then=fixed["value"],
                         value=value_fixed, entered=entry_fixed)
    money_weighted = {}
    if flows is not None:
        # Today's entry is money in at the range's end, beside the final value: in today's flow, made as the
        # generation makes a day's (its money in and out summed exactly, each converted once: `money_today`).
        times, amounts = list(flows["times"]), list(flows["amounts"])
        if entry:
            money_in, money_out = money_today or (ZERO, ZERO)
            with localcontext(EXACT_SUMS):
                today = float(money_out) - float(money_in + entry)
            if times and times[-1] == flows["span"]:
                amounts[-1] = today
            else:
                times.append(flows["span"])
                amounts.append(today)
        rho = _xirr(times=np.array([*times, flows["span"]]), amounts=np.array([*amounts, float(value)]))
        money_weighted = {"money_weighted_return": _rate(_growth(rho, years=1.0)),
                          # (a chart generated before the years were kept: the range's length, as it then was)
                          "money_weighted_return_period": _rate(_growth(rho, years=base.get("years_invested",
                                                                                            flows["span"])))}
    return RangePerformance({
        **figures, **money_weighted, "value": money_format(value), "unrealized_gain": money_format(unrealized),
        "gross_performance": money_format(gross), "gross_performance_percent": ratio_format(gross, capital),
        "net_performance": money_format(net), "net_performance_percent": ratio_format(net, capital),
        "time_weighted_return": _rate(twr), "time_weighted_return_without_fx": _rate(twr_fixed),
    })


def _at_fixed_rates(snapshot: Snapshot, fixed: dict[str, Decimal | None]) -> Decimal:
    """A day's exact value with each currency converted at its fixed rate (codes without one left out)."""
    with localcontext(EXACT_SUMS):
        return sum((amount * fixed[code] for code, amount in snapshot.local.items() if fixed.get(code) is not None),
                   ZERO)


def twr_day_factor(*, previous: float, value: float, flow: float) -> float | None:
    """One day's time-weighted factor: V_d / (V_{d−1} + F_d) when money came in (the day's net flow F_d > 0),
    (V_d − F_d) / V_{d−1} when it went out; None when nothing was at work that day: nothing the day before and
    nothing the value sees at its end (a fee paid with nothing held, a gift not yet priced)."""
    factors, counted = _twr_factors(value_start=previous, values=np.array([value]), inflows=np.array([flow]),
                                    outflows=np.zeros(1))
    return float(factors[0]) if counted[0] else None


def twr_live(twr: float | None, *, previous: float, flow: float, value_then: float, value: float,
             entered: float) -> float | None:
    """A time-weighted return whose last day is today, moved from the generation's value of today
    (`value_then`) to the live `value`: today's factor (V + out) / start made again as a generation counting
    today's quotes makes it, `entered` (the positions it would value today that the generation could not) being
    money in today. None when nothing was ever at work, or the generation's factor of today was 0."""
    then = twr_day_factor(previous=previous, value=value_then, flow=flow)
    now = twr_day_factor(previous=previous, value=value, flow=flow + entered)
    if then == 0.0:
        return None  # nothing to move it from
    growth = (1.0 + twr if twr is not None else 1.0) / (then if then is not None else 1.0)
    if now is None:
        return twr if then is None else growth - 1.0
    return growth * now - 1.0


def _twr_factors(*, value_start: float, values: np.ndarray, inflows: np.ndarray,
                 outflows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each day's time-weighted factor (twr_day_factor: the day's net money in at work from its start, its net
    money out until its end), 1 on the days with nothing at work; and which days count."""
    flow = inflows - outflows
    previous = np.concatenate([[value_start], values[:-1]])
    start = previous + np.maximum(flow, 0.0)
    counted = (start > 0) & ((previous > 0) | (values > 0))
    factors = np.ones(len(values))
    factors[counted] = (values[counted] + np.maximum(-flow, 0.0)[counted]) / start[counted]
    return factors, counted


def _twr(*, value_start: float, values: np.ndarray, inflows: np.ndarray, outflows: np.ndarray) -> float | None:
    """Daily-chained time-weighted return (_twr_factors); None when no day counts."""
    factors, counted = _twr_factors(value_start=value_start, values=values, inflows=inflows, outflows=outflows)
    if not counted.any():
        return None
    return float(np.prod(factors[counted]) - 1.0)


def _years_invested(*, value_start: float, values: np.ndarray) -> float:
    """The years the money was at work: the range's days whose previous day's value is above 0 (the XIRR's flows
    are dated: money in on a day works from that date, so a first buy's day adds no time), the period the XIRR's
    rate compounds over. Over the whole range, a first buy inside it, a sale out of everything or the months
    between two round trips would compound the rate over days when no money was in (+10 % earned in ten days of
    a year-long range read as +3,000 %)."""
    previous = np.concatenate([[value_start], values[:-1]])
    return float(np.count_nonzero(previous > 0)) / DAYS_PER_YEAR


def _xirr(*, times: np.ndarray, amounts: np.ndarray) -> float | None:
    """The continuous yearly rate ρ with Σ amount_i e^(−ρ t_i) = 0 (t in years), or None when there is none:
    the XIRR is r = e^ρ − 1, as Σ amount_i (1 + r)^(−t_i) = 0."""
    keep = amounts != 0
    times, amounts = times[keep], amounts[keep]
    if not (np.any(amounts > 0) and np.any(amounts < 0)):
        return None
    span = float(times.max() - times.min())
    if span <= 0:
        return None

    def npv(rho: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Σ a e^(−ρt) and its derivative, both divided by the largest e^(−ρt): same sign and same ratio,
        without overflow at extreme rates."""
        exponents = -np.multiply.outer(rho, times)
        weights = np.exp(exponents - exponents.max(axis=-1, keepdims=True))
        return (weights * amounts).sum(axis=-1), -(weights * amounts * times).sum(axis=-1)

    limit = XIRR_EXPONENT_MAX / span
    steps = XIRR_GRID_START * 2.0 ** np.arange(int(np.ceil(np.log2(limit / XIRR_GRID_START))) + 1)
    grid = np.concatenate([-steps[::-1], [0.0], steps])
    signs = np.sign(npv(grid)[0])
    # Roots on the grid itself, and brackets (lo, hi) of a sign change; the one nearest ρ = 0 wins: with
    # several roots, the least extreme rate.
    found = [(abs(float(grid[i])), float(grid[i]), float(grid[i])) for i in np.flatnonzero(signs == 0)]
    found += [(min(abs(float(grid[i])), abs(float(grid[i + 1]))), float(grid[i]), float(grid[i + 1]))
              for i in np.flatnonzero(signs[:-1] * signs[1:] < 0)]
    if not found:
        return None
    _, lo, hi = min(found)
    return _root_in(npv, lo=lo, hi=hi)


# Not scipy.optimize.brentq: it would make scipy (tens of MB) a production dependency for this one root, and
# choosing the bracket nearest 0 above, the part that decides which root, is ours either way.
def _root_in(npv, *, lo: float, hi: float) -> float:
    """Newton's method kept inside the bracket [lo, hi] of a sign change, bisecting whenever a Newton step
    would leave it (so it always converges)."""
    if lo == hi:
        return lo
    lo_negative = npv(np.array(lo))[0] < 0
    rho = (lo + hi) / 2
    for _ in range(XIRR_ITERATIONS):
        f, slope = (float(x) for x in npv(np.array(rho)))
        if f == 0:
            return rho
        if (f < 0) == lo_negative:
            lo = rho
        else:
            hi = rho
        candidate = rho - f / slope if slope else (lo + hi) / 2
        if not lo < candidate < hi:
            candidate = (lo + hi) / 2
        if abs(candidate - rho) <= XIRR_TOLERANCE * max(1.0, abs(rho)):
            return candidate
        rho = candidate
    return rho


def _growth(rho: float | None, *, years: float) -> float | None:
    """e^(ρ × years) − 1; inf past float64's range (written out as None)."""
    if rho is None:
        return None
    with np.errstate(over="ignore"):
        return float(np.expm1(rho * years))


def _rate(value: float | None) -> str | None:
    """A fraction at RATE_PLACES decimals (0.123456 = 12.3456 %); + 0.0 turns -0.0 into 0.0."""
    if value is None or not np.isfinite(value):
        return None
    return f"{round(value, RATE_PLACES) + 0.0:.{RATE_PLACES}f}"


def _investment_by(*, days: np.ndarray, invested: list[Decimal], unit: str) -> list[PeriodInvestment]:
    """Change of the invested capital over each month ("M") or year ("Y") from the first one to today's."""
    periods = days.astype(f"M8[{unit}]")
    last = np.flatnonzero(np.append(periods[1:] != periods[:-1], True))  # each period's last day
    changes, previous = [], ZERO
    with localcontext(EXACT_SUMS):
        for day in last.tolist():
            changes.append(invested[day] - previous)
            previous = invested[day]
    return [
        PeriodInvestment(period=period, investment=money_format(amount))
        for period, amount in zip(np.datetime_as_string(periods[last]).tolist(), changes, strict=True)
    ]


def _nothing() -> RangePerformance:
    zero = money_format(ZERO)
    return RangePerformance(
        start=None, end=None, value_start=zero, value=zero, total_investment=zero,
        time_weighted_invested_capital=zero, gross_performance=zero, gross_performance_percent=None,
        net_performance=zero, net_performance_percent=None, time_weighted_return=None,
        time_weighted_return_without_fx=None, money_weighted_return=None, money_weighted_return_period=None,
        dividends=zero, fees=zero,
        realized_gain=zero, unrealized_gain=zero,
    )
