"""A portfolio's performance over 1D, WTD, MTD, YTD, 1Y, 5Y, MAX and each calendar year, from loaded inputs.

Pure: no database access. It measures the very daily series the chart draws (charts.compute.chart_series_compute:
value and invested per calendar day in the base currency, same carry-forward and left-out rules), so the
chart and these figures never disagree. float64 inside, like the chart; money is rounded to cents and rates
to 6 decimals (0.123456 = 12.3456 %) only when written out.

Definitions (docs/holdings.md, "Performance", says the same for users):

- A range runs from the end of its *base day* b (its starting value V_b) to the end of its last day e, and
  counts the transactions dated b+1..e. e is `today`, or 31 December for a past calendar year. b is:
  1D yesterday; WTD the Sunday before this ISO week's Monday; MTD the last day of the previous month; YTD and
  a calendar year 31 December of the year before; 1Y / 5Y the same day 12 / 60 months before `today` (end of
  month clamped, like the chart's ranges); MAX the day before the first transaction. A base day before the
  first transaction has V_b = 0 and the range starts at the first transaction, as MAX does.
- Cash flows, each transaction at its own date's rate (from the portfolio into the investor's pocket is an
  outflow): a buy is an inflow of quantity × price + fee; a sell an outflow of quantity × price − fee; a
  dividend an outflow of quantity × price − the tax withheld (its fee); a standalone fee an inflow of the fee.
- Positions left out of the value (held with no close yet, or no FX rate — the chart's warnings name them)
  are left out of performance too: a buy or sell of such a position on a day it is left out (or was the day
  before) counts only its fee — the cash went into something the value cannot see — and when it comes into
  the value (its first close or rate arrives) its value that day counts as an inflow. Fees and dividends are
  cash and always count. Closes and rates carry forward, so a position once counted is never left out later.
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
- time_weighted_return = Π (1 + r_d) − 1 over the range's days, r_d = (V_d + outflows_d) / (V_{d−1} +
  inflows_d) − 1: money coming in is at work from the start of its day, money going out leaves at its
  end (so a first buy's day and a full exit's day both count, and no day divides by a negative amount).
  Days with nothing at work (V_{d−1} + inflows_d = 0) are skipped; None when every day is.
- time_weighted_return_without_fx: the same, with the value and the flows of every currency converted at
  one rate per currency — its rate on the range's first day (max(b+1, first transaction)), or its first
  rate after it — instead of each day's: the return without the currency effect. The same amounts are
  left out as in the real series.
- money_weighted_return: the annualised internal rate of return (XIRR, 365-day years) of −V_b at b, the
  net flow of each day d (−inflows_d + outflows_d) at d, and +V_e at e; None when it is undefined (all
  flows of one sign, no time between them) or not finite. Solved as a continuous rate ρ (r = e^ρ − 1) by
  Newton's method safeguarded with bisection, inside the sign change nearest 0 on a grid of rates.
  money_weighted_return_period is the same rate over the range's length, not annualised: e^(ρ (e − b)/365)
  − 1 (a 1D range's annualised rate is astronomically large; this one reads as the day's return).
- realized_gain: the gains of the sells dated in the range (average cost, fees deducted); unrealized_gain:
  on e, value − cost basis of the positions counted in the value whose cost is known.
- investment_by_month / _by_year: net amount invested in each period since the first transaction — buys
  at cost minus sells at their average cost, i.e. the change of the invested capital over the period.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TypedDict

import numpy as np

from charts.compute import ChartSeries, _money, _months_before, _rates_by_day, chart_series_compute
from charts.selectors import ChartInputs
from portfolio.models import TransactionType

RANGES = ("1D", "WTD", "MTD", "YTD", "1Y", "5Y", "MAX")
RANGE_MONTHS = {"1Y": 12, "5Y": 60}

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
    money_weighted_return_period: str | None  # the same rate over the range's length, not annualised
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


@dataclass(frozen=True)
class _Flows:
    """Per day (rows) and currency code (columns), in that currency: see the module's definitions."""

    inflows: np.ndarray
    outflows: np.ndarray
    fees: np.ndarray
    dividends: np.ndarray


def performance_compute(inputs: ChartInputs, *, today: date, series: ChartSeries | None = None) -> Performance:
    """`series`: chart_series_compute's result when the caller already has it (the chart generation does)."""
    base = inputs.base_currency
    series = series or chart_series_compute(inputs, today=today)
    if series is None:
        return Performance(base_currency=base, as_of=today.isoformat(), ranges={key: _nothing() for key in RANGES},
                           investment_by_month=[], investment_by_year=[])

    days, first = series.days, series.first
    daily = _daily_build(inputs, series=series)
    bounds = {key: _range_bounds(key=key, today=today) for key in RANGES}
    tx_years = {tx.date.year for tx in inputs.transactions if tx.date <= today}
    for year in range(first.year, today.year + 1):
        base_day, end_day = date(year - 1, 12, 31), min(date(year, 12, 31), today)
        if year in tx_years or _held(daily, first=first, base_day=base_day, end_day=end_day):
            bounds[str(year)] = (base_day, end_day)
    return Performance(
        base_currency=base,
        as_of=today.isoformat(),
        ranges={key: _range_performance(daily, first=first, base_day=b, end_day=e) for key, (b, e) in bounds.items()},
        investment_by_month=_investment_by(days=days, invested=daily.invested, unit="M"),
        investment_by_year=_investment_by(days=days, invested=daily.invested, unit="Y"),
    )


@dataclass(frozen=True)
class _Daily:
    """Everything a range needs, per day from the first transaction to today (base currency unless said)."""

    value: np.ndarray
    invested: np.ndarray
    unrealized: np.ndarray
    realized: np.ndarray
    rates: np.ndarray  # (days × codes)
    value_local: np.ndarray  # (days × codes), in each code's currency
    flows: _Flows  # in each code's currency
    inflows: np.ndarray
    outflows: np.ndarray
    fees: np.ndarray
    dividends: np.ndarray


def _daily_build(inputs: ChartInputs, *, series: ChartSeries) -> _Daily:
    days = series.days
    codes = sorted(set(series.codes) | {tx.currency for tx in inputs.transactions})
    # Each day's rate per code, NaN before a currency's first rate; amounts in such a code are left out.
    rates = np.stack([_rates_by_day(inputs.fx.get(code), days=days) for code in codes], axis=1)
    flows = _flows(inputs, series=series, codes=codes)
    value_local = series.grid.value_local @ _code_map(series.codes, codes)
    # Per day; a gain that could not be converted (NaN) is left out, like its cost in the chart.
    until_today = series.replay.realized_days < len(days)
    realized = np.bincount(series.replay.realized_days[until_today], minlength=len(days),
                           weights=np.nan_to_num(series.replay.realized_gains[until_today]))
    return _Daily(
        value=series.grid.value, invested=series.grid.invested, unrealized=series.grid.unrealized,
        realized=realized, rates=rates, value_local=value_local, flows=flows,
        inflows=_in_base(flows.inflows, rates), outflows=_in_base(flows.outflows, rates),
        fees=_in_base(flows.fees, rates), dividends=_in_base(flows.dividends, rates),
    )


def twr_growth_index(inputs: ChartInputs, *, series: ChartSeries) -> np.ndarray:
    """Per day, what 1 invested on the first day has grown to at the time-weighted return (the same
    daily factors as `_twr`; a day with nothing at work counts as 1). The return between two days is
    growth[b] / growth[a] − 1: how the benchmark comparison draws the portfolio's line."""
    daily = _daily_build(inputs, series=series)
    at_work = np.concatenate([[0.0], daily.value[:-1]]) + daily.inflows
    factors = np.ones(len(at_work))
    counted = at_work > 0
    factors[counted] = (daily.value[counted] + daily.outflows[counted]) / at_work[counted]
    return np.cumprod(np.nan_to_num(factors, nan=1.0))


def _flows(inputs: ChartInputs, *, series: ChartSeries, codes: list[str]) -> _Flows:
    n_days = len(series.days)
    shape = (n_days, len(codes))
    flows = _Flows(inflows=np.zeros(shape), outflows=np.zeros(shape), fees=np.zeros(shape),
                   dividends=np.zeros(shape))
    code_index = {code: k for k, code in enumerate(codes)}
    left_out = series.grid.left_out
    for tx in inputs.transactions:
        day = (tx.date - series.first).days
        if day >= n_days:  # after today: not in the value yet either
            break
        k = code_index[tx.currency]
        column = int(np.searchsorted(series.ids, tx.instrument_id))
        amount, fee = float(tx.quantity * tx.price), float(tx.fee)
        # A trade in a position the value cannot see (today or yesterday) exchanges cash for nothing visible:
        # only its fee counts; the position counts as an inflow at its value on the day it comes in.
        seen = not left_out[day, column] and not (day > 0 and left_out[day - 1, column])
        if tx.type == TransactionType.BUY:
            flows.inflows[day, k] += amount + fee if seen else fee
        elif tx.type == TransactionType.SELL:
            if seen:
                flows.outflows[day, k] += amount - fee
            else:
                flows.inflows[day, k] += fee
        elif tx.type == TransactionType.DIVIDEND:
            flows.outflows[day, k] += amount - fee
            flows.dividends[day, k] += amount
        elif tx.type == TransactionType.FEE:
            flows.inflows[day, k] += fee
        flows.fees[day, k] += fee
    flows.inflows[:] += series.grid.entries_local @ _code_map(series.codes, codes)
    return flows


def _code_map(source: list[str], target: list[str]) -> np.ndarray:
    """(source × target) 0/1 matrix moving columns of one list of currency codes to another."""
    mapping = np.zeros((len(source), len(target)))
    mapping[np.arange(len(source)), [target.index(code) for code in source]] = 1.0
    return mapping


def _in_base(amounts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Per day, amounts converted at each day's rate; a code without a rate (NaN) is left out."""
    return (amounts * np.nan_to_num(rates, nan=0.0)).sum(axis=1)


def _range_bounds(*, key: str, today: date) -> tuple[date, date]:
    """(base day b, last day e) of a named range, per the module's definitions; MAX's b is date.min."""
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
        base_day = _months_before(today, RANGE_MONTHS[key])
    return base_day, today


def _held(daily: _Daily, *, first: date, base_day: date, end_day: date) -> bool:
    """Something was held (valued or at cost) at the start of the range or on one of its days."""
    lo, hi = max((base_day - first).days, 0), (end_day - first).days + 1
    return bool(np.any(daily.value[lo:hi] != 0) or np.any(daily.invested[lo:hi] != 0))


def _range_performance(daily: _Daily, *, first: date, base_day: date, end_day: date) -> RangePerformance:
    b = max((base_day - first).days, -1)  # -1: before the first transaction, where the value is 0
    e = (end_day - first).days
    s = b + 1
    days = slice(s, e + 1)
    value_start = float(daily.value[b]) if b >= 0 else 0.0
    value_end = float(daily.value[e])
    inflows, outflows = daily.inflows[days], daily.outflows[days]
    fees = float(daily.fees[days].sum())
    net = value_end - value_start - float(inflows.sum() - outflows.sum())
    gross = net + fees
    capital = float(daily.invested[days].mean())

    # Without the currency effect: one rate per code, its first in the range (see the module docstring),
    # and NaN wherever the real rate is NaN so the very same amounts are left out.
    real = daily.rates[days]
    known = ~np.isnan(real)
    fixed = np.where(known.any(axis=0), real[np.argmax(known, axis=0), np.arange(real.shape[1])], np.nan)
    fixed_by_day = np.where(known, fixed, np.nan)
    flows = daily.flows
    value_fixed = _in_base(daily.value_local[days], fixed_by_day)
    start_fixed = float(_in_base(daily.value_local[b:b + 1], fixed[None, :])[0]) if b >= 0 else 0.0

    rho = _xirr(
        times=np.concatenate([[0.0], np.arange(1, e - b + 1, dtype="f8"), [e - b]]) / DAYS_PER_YEAR,
        amounts=np.concatenate([[-value_start], outflows - inflows, [value_end]]),
    )
    first_counted = first + timedelta(days=s)
    return RangePerformance(
        start=first_counted.isoformat(),
        end=end_day.isoformat(),
        value_start=_money(value_start),
        value=_money(value_end),
        total_investment=_money(float(daily.invested[e])),
        time_weighted_invested_capital=_money(capital),
        gross_performance=_money(gross),
        gross_performance_percent=_rate(gross / capital if capital > 0 else None),
        net_performance=_money(net),
        net_performance_percent=_rate(net / capital if capital > 0 else None),
        time_weighted_return=_rate(_twr(value_start=value_start, values=daily.value[days], inflows=inflows,
                                        outflows=outflows)),
        time_weighted_return_without_fx=_rate(_twr(
            value_start=start_fixed, values=value_fixed, inflows=_in_base(flows.inflows[days], fixed_by_day),
            outflows=_in_base(flows.outflows[days], fixed_by_day),
        )),
        money_weighted_return=_rate(_growth(rho, years=1.0)),
        money_weighted_return_period=_rate(_growth(rho, years=(e - b) / DAYS_PER_YEAR)),
        dividends=_money(float(daily.dividends[days].sum())),
        fees=_money(fees),
        realized_gain=_money(float(daily.realized[days].sum())),
        unrealized_gain=_money(float(daily.unrealized[e])),
    )


def _twr(*, value_start: float, values: np.ndarray, inflows: np.ndarray, outflows: np.ndarray) -> float | None:
    """Daily-chained time-weighted return: inflows at the start of their day, outflows at its end."""
    at_work = np.concatenate([[value_start], values[:-1]]) + inflows
    counted = at_work > 0
    if not counted.any():
        return None
    return float(np.prod((values[counted] + outflows[counted]) / at_work[counted]) - 1.0)


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


def _investment_by(*, days: np.ndarray, invested: np.ndarray, unit: str) -> list[PeriodInvestment]:
    """Change of the invested capital over each month ("M") or year ("Y") from the first one to today's."""
    periods = days.astype(f"M8[{unit}]")
    last = np.flatnonzero(np.append(periods[1:] != periods[:-1], True))  # each period's last day
    amounts = np.diff(invested[last], prepend=0.0)
    return [
        PeriodInvestment(period=period, investment=_money(amount))
        for period, amount in zip(np.datetime_as_string(periods[last]).tolist(), amounts.tolist(), strict=True)
    ]


def _nothing() -> RangePerformance:
    zero = _money(0.0)
    return RangePerformance(
        start=None, end=None, value_start=zero, value=zero, total_investment=zero,
        time_weighted_invested_capital=zero, gross_performance=zero, gross_performance_percent=None,
        net_performance=zero, net_performance_percent=None, time_weighted_return=None,
        time_weighted_return_without_fx=None, money_weighted_return=None, money_weighted_return_period=None,
        dividends=zero, fees=zero,
        realized_gain=zero, unrealized_gain=zero,
    )
