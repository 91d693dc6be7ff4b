"""The portfolio's time-weighted return against a benchmark index, per chart range.

Both lines are measured from the range's base: its first point, except YTD's, measured from 31 December (the
day before its first point, and the YTD performance range's base day) when the series has it, so that 1 January's
move counts (a coin's, a manual close's) and its last point is the YTD time-weighted return; and except a range
cut to the portfolio's first day (MAX, YTD in the year the portfolio began, a 1Y begun before the first trade),
measured from the day before it (the portfolio's growth 1, the benchmark's last close before it), as its
time-weighted return counts the first day's move, from the trade prices to the day's closes. (A range whose
first day is the first trade's day, uncut — a 1Y the day a year after it — is measured from that day's end, as
the 1Y return is.) The portfolio's line
from its daily-chained TWR (charts.performance), the benchmark's from its own closes, carried forward over days it
did not trade. A benchmark without a close yet on a day has no point that day (null), never 0.

Today's point of each line follows the live quotes at read time (charts.live): `benchmark_live_base`
keeps what it needs — each range's starting growth and close, unrounded.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

import numpy as np

from charts.compute import chart_range_start_day

CENTI = 1e-6


class BenchmarkLive(TypedDict):
    instrument_id: int
    growth: float  # the portfolio's TWR growth index today, as generated
    close: float | None  # the benchmark's close the generation used for today (its last before today)
    ranges: dict[str, tuple[float, float | None]]  # range -> (growth, close) at its first point


def _rate(value: float) -> str | None:
    return None if not np.isfinite(value) else f"{value:.6f}"


def benchmark_return(*, growth: float, growth_start: float, close: float, close_start: float) -> tuple:
    """(portfolio, benchmark) returns since a range's first point, as the chart writes them."""
    return (_rate(growth / growth_start - 1) if growth_start > CENTI else None,
            _rate(close / close_start - 1) if np.isfinite(close_start) else None)


def _carried(*, days: np.ndarray, close_dates: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """The benchmark's close on every day of the series, carried forward (NaN before its first close)."""
    index = np.searchsorted(close_dates, days, side="right") - 1
    if not len(closes):
        return np.full(len(days), np.nan)
    return np.where(index >= 0, closes[np.clip(index, 0, None)], np.nan)


# The row standing for the day before the series' first: the portfolio's growth is 1 there (nothing yet).
BEFORE = -1


def _range_rows(*, days: np.ndarray, ranges: dict[str, list[dict]]) -> dict[str, tuple[int | None, list[int]]]:
    """Per range, the row its lines are measured from (None: it has no point; BEFORE: the day before the series)
    and the rows of its points."""
    position = {str(day): k for k, day in enumerate(days.astype("M8[D]").astype(str))}
    first, today = (days[0].astype("M8[D]").item(), days[-1].astype("M8[D]").item()) if len(days) else (None, None)
    found = {}
    for name, points in ranges.items():
        rows = [position[p["date"]] for p in points if p["date"] in position]
        base = rows[0] if rows else None
        if name == "YTD" and rows:
            # 31 December before the range's first point (its 1 January), when the series reaches back to it.
            base = position.get(f"{int(points[0]['date'][:4]) - 1}-12-31", base)
        # A range cut to the series' first day is measured from the day before it, as its return is: one whose
        # base day (YTD's 31 December, the others' first day) is before the first.
        start = chart_range_start_day(key=name, today=today) if rows else None
        base_day = None if start is None else start - timedelta(days=1) if name == "YTD" else start
        found[name] = (BEFORE if rows and base == rows[0] == 0 and (base_day is None or base_day < first) else base,
                       rows)
    return found


def _lines(*, days: np.ndarray, growth: np.ndarray, close_dates: np.ndarray,
           closes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The portfolio's growth and the benchmark's carried close on every day of the series, and last, at BEFORE,
    on the day before it (growth 1, the benchmark's last close before the series' first day)."""
    bench = _carried(days=np.concatenate([days, days[:1] - np.timedelta64(1, "D")]), close_dates=close_dates,
                     closes=closes)
    return np.append(growth, 1.0), bench


def benchmark_compare(*, symbol: str, days: np.ndarray, growth: np.ndarray, close_dates: np.ndarray,
                      closes: np.ndarray, ranges: dict[str, list[dict]]) -> dict:
    """`ranges`: the chart's points per range (their dates are used); returns per range
    [{"date","portfolio","benchmark"}] with returns since the range's first point as 6-decimal strings."""
    growth, bench = _lines(days=days, growth=growth, close_dates=close_dates, closes=closes)
    compared = {}
    for name, (start, rows) in _range_rows(days=days, ranges=ranges).items():
        if not rows:
            compared[name] = []
            continue
        base_bench = next((bench[k] for k in [start, *rows] if np.isfinite(bench[k])), np.nan)
        compared[name] = []
        for k in rows:
            portfolio, benchmark = benchmark_return(growth=growth[k], growth_start=growth[start], close=bench[k],
                                                    close_start=base_bench)
            compared[name].append({"date": str(days[k].astype("M8[D]")), "portfolio": portfolio,
                                   "benchmark": benchmark})
    return {"symbol": symbol, "ranges": compared}


def benchmark_live_base(*, instrument_id: int, days: np.ndarray, growth: np.ndarray, close_dates: np.ndarray,
                        closes: np.ndarray, ranges: dict[str, list[dict]]) -> BenchmarkLive:
    """What today's point of each range's comparison needs to follow the live quotes (charts.live).

    A range whose benchmark has no close before today has None for its starting close: its line starts at
    today's close, if any."""
    growth, bench = _lines(days=days, growth=growth, close_dates=close_dates, closes=closes)
    bases = {}
    for name, (start, rows) in _range_rows(days=days, ranges=ranges).items():
        if len(rows) < 2 and start == (rows[0] if rows else None):  # today alone: both lines 0 whatever the quotes
            continue
        base_bench = next((float(bench[k]) for k in [start, *rows] if np.isfinite(bench[k])), None)
        bases[name] = (float(growth[start]), base_bench)
    last = float(bench[-2]) if len(bench) > 1 and np.isfinite(bench[-2]) else None  # today's (-1 is BEFORE's)
    return BenchmarkLive(instrument_id=instrument_id, growth=float(growth[-2]), close=last, ranges=bases)
