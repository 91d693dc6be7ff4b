"""Sparklines: each held instrument's stored closes over the last months, made as the JSON text the cache
stores.

A 500-holding chart has up to 30,000 sparkline points. As Python objects — a formatted string and a dict
per point, then json.dumps over them all — they cost ~22 ms of a generation; as text written by numpy into
one byte array (every point a fixed-width row of characters, the ones a point does not use dropped in one
pass), ~5 ms. The text is byte for byte what json.dumps writes for the same points
(tests/charts/test_sparklines.py) and is what the cache stores: the generation, which only stores them,
never decodes them (~6 ms more); the chart data of charts.compute, plain JSON data, has them decoded.
"""

import json
from collections.abc import Iterator, Mapping
from datetime import date
from typing import TypedDict

import numpy as np

from charts.selectors import MICROS_PER_UNIT, PriceRows
from prices.series import day_numbers

SPARKLINE_POINTS_MAX = 60  # a sparkline is ~100 px wide: more points draw nothing more


class SparkPoint(TypedDict):
    date: str
    close: str  # in the instrument's own currency


def price_format(close: float) -> str:
    """A close at the stored precision (6 places), trailing zeros dropped: 101.5 not 101.500000."""
    return f"{close:.6f}".rstrip("0").rstrip(".")


class Sparklines(Mapping[str, list[SparkPoint]]):
    """Instrument id (as the JSON object key it is sent as: "12") -> its points, sorted by id, kept as the
    JSON text they were made as: json_text() is json.dumps of the whole, so that caching them encodes nothing
    again; a line is decoded when read, and decoded() is the whole as plain data. Keyed by id, not symbol: a
    portfolio may hold two instruments of one symbol (a user's manual KO and the shared KO)."""

    def __init__(self, lines: dict[str, str]) -> None:
        self._lines = lines  # instrument id -> the JSON of its list of points

    def __getitem__(self, instrument_id: str) -> list[SparkPoint]:
        return json.loads(self._lines[instrument_id])

    def __contains__(self, instrument_id: object) -> bool:  # without it, `in` would decode the line (Mapping's)
        return instrument_id in self._lines

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def json_text(self) -> str:
        return "{" + ", ".join(f"{json.dumps(key)}: {line}" for key, line in self._lines.items()) + "}"

    def decoded(self) -> dict[str, list[SparkPoint]]:
        return json.loads(self.json_text())


def sparklines_make(prices: PriceRows, *, instrument_ids: list[int], since: date, until: date) -> Sparklines:
    """The stored closes of each instrument dated from `since` to `until`, thinned to at most
    SPARKLINE_POINTS_MAX (every n-th close counted back from the latest, so the latest is always there)."""
    since_day, until_day = np.datetime64(since, "D"), np.datetime64(until, "D")
    since_number, until_number = int(day_numbers(since)), int(day_numbers(until))
    # Price rows are sorted by instrument then date: each instrument's rows are one slice, and its window
    # of days a slice of that, found for all of them at once (a search per instrument was ~4 ms for 500).
    lo, hi = prices.rows_of(np.array(instrument_ids, dtype="i8"))
    start = _runs_search(prices.days, lo=lo, hi=hi, value=since_number, right=False)
    stop = _runs_search(prices.days, lo=lo, hi=hi, value=until_number, right=True)
    # Every step-th row counted back from the window's last (whole-number ceil: the same steps as
    # ceil(rows / SPARKLINE_POINTS_MAX)), as np.arange(stop - 1, start - 1, -step)[::-1] per instrument.
    size = stop - start
    step = np.maximum(1, -(-size // SPARKLINE_POINTS_MAX))
    counts = np.where(size > 0, (size - 1) // step + 1, 0)
    at = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)  # each point's place in its line
    rows = np.repeat(stop - 1 - (counts - 1) * step, counts) + at * np.repeat(step, counts)
    counts = counts.tolist()
    texts = _points_text(prices.days[rows].astype("M8[D]"), prices.micros[rows], counts=counts, since=since_day,
                         until=until_day)
    return Sparklines({str(instrument_id): f"[{text}]"
                       for instrument_id, text in sorted(zip(instrument_ids, texts, strict=True))})


def _runs_search(dates: np.ndarray, *, lo: np.ndarray, hi: np.ndarray, value: int,
                 right: bool) -> np.ndarray:
    """np.searchsorted(dates[lo[k]:hi[k]], value, side="right" if right else "left") + lo[k] for every run
    k of rows (each sorted) at once: a binary search stepping all the runs together."""
    lo, hi = lo.astype("i8"), hi.astype("i8")
    while (searching := lo < hi).any():
        middle = (lo + hi) // 2
        seen = dates[np.where(searching, middle, 0)]
        after = searching & ((seen <= value) if right else (seen < value))
        lo = np.where(after, middle + 1, lo)
        hi = np.where(searching & ~after, middle, hi)
    return lo


# Each point's text is written into a row of 57 bytes, every part in a field of its own, and the NUL bytes
# a number leaves unused (its padding) dropped at the end, all rows in one pass:
#   {"date": | "2026-09-11", | "close": " | -123|456|789|.123|456 | "},
# Each field is filled from a table of its possible texts: one copy per point and field.
_ROW = np.dtype([("head", "S8"), ("date", "S15"), ("label", "S10"), ("millions", "u4"), ("thousands", "u4"),
                 ("units", "u4"), ("decimals", "u4"), ("micro_decimals", "u4"), ("tail", "u4")])
_TAIL, _LAST_TAIL = (np.frombuffer(text, dtype=np.uint32)[0] for text in (b'"}, ', b'"}\n\0'))


def _slots(texts: list[str]) -> np.ndarray:
    return np.frombuffer(b"".join(text.encode().ljust(4, b"\0") for text in texts), dtype=np.uint32)


# Indexed by (condition × 1000 + the group's three digits):
# the sign (when negative) with the millions, leading zeros dropped;
_MILLIONS = _slots([sign + str(k).lstrip("0") for sign in ("", "-") for k in range(1000)])
# the thousands, leading zeros dropped unless there are millions;
_THOUSANDS = _slots([str(k).lstrip("0") for k in range(1000)] + [f"{k:03d}" for k in range(1000)])
# the units, as written alone ("0" for none) unless there are thousands;
_UNITS = _slots([str(k) for k in range(1000)] + [f"{k:03d}" for k in range(1000)])
# the point with the first three decimals, trailing zeros dropped unless more decimals follow (no point
# for no decimals);
_DECIMALS = _slots([f".{k:03d}".rstrip("0").rstrip(".") for k in range(1000)] + [f".{k:03d}" for k in range(1000)])
# the last three decimals, trailing zeros dropped.
_MICRO_DECIMALS = _slots([f"{k:03d}".rstrip("0") for k in range(1000)])

# Closes written from their millionths below this are exactly price_format's (at most 9 digits before
# the point, and below 2^33 a double's spacing is under a millionth, so its 6-place rounding is the stored
# millionths).
_MICROS_EXACT = 10 ** 15


def _points_text(dates: np.ndarray, micros: np.ndarray, *, counts: list[int], since: np.datetime64,
                 until: np.datetime64) -> list[str]:
    """The JSON of each line's points without its brackets — json.dumps of [{"date", "close"}…] — for
    lines of `counts` points each, the points in order, dated from `since` to `until`."""
    n = len(micros)
    # The window's few days written once each, then copied to their points.
    day_texts = np.datetime_as_string(np.arange(since, until + 1), unit="D").tolist()
    if n and (np.abs(micros).max() >= _MICROS_EXACT or any(len(day) != 10 for day in day_texts)):
        return _points_text_slow(dates, micros, counts=counts)
    rows = np.empty(n, dtype=_ROW)
    rows["head"] = b'{"date":'
    rows["date"] = np.array([f' "{day}", '.encode() for day in day_texts], dtype="S15")[(dates - since).astype("i8")]
    rows["label"] = b'"close": "'
    whole, fraction = np.divmod(np.abs(micros), MICROS_PER_UNIT)
    millions, thousands = np.divmod(whole, 1_000_000)
    thousands, units = np.divmod(thousands, 1000)
    decimals, micro_decimals = np.divmod(fraction, 1000)
    rows["millions"] = _MILLIONS[(micros < 0) * 1000 + millions]
    rows["thousands"] = _THOUSANDS[(millions > 0) * 1000 + thousands]
    rows["units"] = _UNITS[(whole >= 1000) * 1000 + units]
    rows["decimals"] = _DECIMALS[(micro_decimals > 0) * 1000 + decimals]
    rows["micro_decimals"] = _MICRO_DECIMALS[micro_decimals]
    rows["tail"] = _TAIL
    # A line's last point ends the line: the text is cut there.
    counts_array = np.asarray(counts, dtype="i8")
    rows["tail"][(np.cumsum(counts_array) - 1)[counts_array > 0]] = _LAST_TAIL
    texts = iter(rows.tobytes().translate(None, b"\0").decode("ascii").split("\n"))
    return [next(texts) if count else "" for count in counts]


def _points_text_slow(dates: np.ndarray, micros: np.ndarray, *, counts: list[int]) -> list[str]:
    """Point by point, for closes or dates outside what the byte rows hold (a close of a billion or more)."""
    points = [SparkPoint(date=day, close=price_format(close)) for day, close in zip(
        np.datetime_as_string(dates, unit="D").tolist(), (micros / MICROS_PER_UNIT).tolist(), strict=True)]
    ends = np.cumsum(counts).tolist()
    return [json.dumps(points[end - count:end])[1:-1] for end, count in zip(ends, counts, strict=True)]
