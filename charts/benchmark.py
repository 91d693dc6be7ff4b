"""The portfolio's time-weighted return against a benchmark index, per chart range.

Both lines start at 0 % on the range's first point: the portfolio's from its daily-chained TWR
(charts.performance), the benchmark's from its own closes, carried forward over days it did not
trade. A benchmark without a close yet on a day has no point that day (null), never 0.

Today's point of each line follows the live quotes at read time (charts.live): `benchmark_live_base`
keeps what it needs — each range's starting growth and close, unrounded.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

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


def _range_rows(*, days: np.ndarray, ranges: dict[str, list[dict]]) -> dict[str, list[int]]:
    position = {str(day): k for k, day in enumerate(days.astype("M8[D]").astype(str))}
    return {name: [position[p["date"]] for p in points if p["date"] in position] for name, points in ranges.items()}


def benchmark_compare(*, symbol: str, days: np.ndarray, growth: np.ndarray, close_dates: np.ndarray,
                      closes: np.ndarray, ranges: dict[str, list[dict]]) -> dict:
    """`ranges`: the chart's points per range (their dates are used); returns per range
    [{"date","portfolio","benchmark"}] with returns since the range's first point as 6-decimal strings."""
    bench = _carried(days=days, close_dates=close_dates, closes=closes)
    compared = {}
    for name, rows in _range_rows(days=days, ranges=ranges).items():
        if not rows:
            compared[name] = []
            continue
        start = rows[0]
        base_bench = next((bench[k] for k in rows if np.isfinite(bench[k])), np.nan)
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
    bench = _carried(days=days, close_dates=close_dates, closes=closes)
    bases = {}
    for name, rows in _range_rows(days=days, ranges=ranges).items():
        if len(rows) < 2:  # today alone: both lines are 0 whatever today's quotes
            continue
        base_bench = next((float(bench[k]) for k in rows if np.isfinite(bench[k])), None)
        bases[name] = (float(growth[rows[0]]), base_bench)
    last = float(bench[-1]) if len(bench) and np.isfinite(bench[-1]) else None
    return BenchmarkLive(instrument_id=instrument_id, growth=float(growth[-1]), close=last, ranges=bases)
