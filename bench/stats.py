"""Summaries of timing samples: milliseconds, percentiles by linear interpolation (numpy's default)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def summary_ms(seconds: list[float]) -> dict:
    """p50/p95/mean/min/max in milliseconds of samples given in seconds."""
    if not seconds:
        return {"n": 0}
    ms = np.array(seconds) * 1000
    return {
        "n": len(seconds),
        "p50": round(float(np.percentile(ms, 50)), 2),
        "p95": round(float(np.percentile(ms, 95)), 2),
        "mean": round(float(ms.mean()), 2),
        "min": round(float(ms.min()), 2),
        "max": round(float(ms.max()), 2),
    }


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 2)
