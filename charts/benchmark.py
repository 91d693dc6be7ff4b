"""The portfolio's time-weighted return against a benchmark index, per chart range.

Both lines start at 0 % on the range's first point: the portfolio's from its daily-chained TWR
(charts.performance), the benchmark's from its own closes, carried forward over days it did not
trade. A benchmark without a close yet on a day has no point that day (null), never 0.
"""

from __future__ import annotations

import numpy as np

CENTI = 1e-6


def _rate(value: float) -> str | None:
    return None if not np.isfinite(value) else f"{value:.6f}"


def benchmark_compare(*, symbol: str, days: np.ndarray, growth: np.ndarray, close_dates: np.ndarray,
                      closes: np.ndarray, ranges: dict[str, list[dict]]) -> dict:
    """`ranges`: the chart's points per range (their dates are used); returns per range
    [{"date","portfolio","benchmark"}] with returns since the range's first point as 6-decimal strings."""
    # The benchmark's close on every day of the series, carried forward (NaN before its first close).
    index = np.searchsorted(close_dates, days, side="right") - 1
    bench = np.where(index >= 0, closes[np.clip(index, 0, None)], np.nan) if len(closes) else np.full(len(days), np.nan)
    position = {str(day): k for k, day in enumerate(days.astype("M8[D]").astype(str))}
    compared = {}
    for name, points in ranges.items():
        rows = [position[p["date"]] for p in points if p["date"] in position]
        if not rows:
            compared[name] = []
            continue
        start = rows[0]
        base_bench = next((bench[k] for k in rows if np.isfinite(bench[k])), np.nan)
        compared[name] = [
            {"date": str(days[k].astype("M8[D]")),
             "portfolio": _rate(growth[k] / growth[start] - 1) if growth[start] > CENTI else None,
             "benchmark": _rate(bench[k] / base_bench - 1) if np.isfinite(base_bench) else None}
            for k in rows
        ]
    return {"symbol": symbol, "ranges": compared}
