"""Sparklines made as their JSON text (charts/sparklines.py): byte for byte what json.dumps writes for the
points formatted one by one with price_format."""

import json
from datetime import date, timedelta
from decimal import Decimal as D

import numpy as np
import pytest

from charts.compute import chart_data_compute
from charts.selectors import PriceRows, chart_inputs_load
from charts.sparklines import (
    SPARKLINE_POINTS_MAX,
    SparkPoint,
    _points_text,
    price_format,
    sparklines_make,
)
from prices.series import day_numbers
from tests.charts.factories import closes_create
from tests.factories import InstrumentFactory, TransactionFactory

SINCE, UNTIL = date(2026, 9, 5), date(2026, 12, 5)

EDGES = [0, 1, -1, 9, 10, 100, 120, 1_000, 500_000, -500_000, 999_999, 1_000_000, -1_000_000, 1_200_000,
         10_000_000, 1_000_000_000, 1_000_500_000, 123_456_789_000_000, 100_000_000_000_005, 10**15 - 1,
         -(10**15 - 1), 999_999_999_999_000, 5_000_050, 7_000_000_001]


def _expected(dates: np.ndarray, micros: np.ndarray, counts: list[int]) -> list[str]:
    """Point by point, as the sparklines were made before they were written as text."""
    points = [SparkPoint(date=day, close=price_format(close)) for day, close in zip(
        np.datetime_as_string(dates, unit="D").tolist(), (micros / 1_000_000).tolist(), strict=True)]
    ends = np.cumsum(counts).tolist()
    return [json.dumps(points[end - count:end])[1:-1] for end, count in zip(ends, counts, strict=True)]


@pytest.mark.parametrize("seed", range(12))
def test_points_text_is_json_dumps_of_the_points_formatted_one_by_one(seed):
    rng = np.random.default_rng(seed)
    scale = 10 ** int(rng.integers(1, 16))
    micros = np.concatenate([rng.integers(-scale, scale, int(rng.integers(0, 2000))), EDGES]).astype("i8")
    micros = np.where(np.abs(micros) < 10**15, micros, 7)
    if seed % 3 == 0:  # whole numbers and few decimals: the trailing zeros dropped
        micros = micros // 10 ** int(rng.integers(1, 7)) * 10 ** int(rng.integers(1, 7))
        micros = np.where(np.abs(micros) < 10**15, micros, 3)
    since, until = np.datetime64(SINCE, "D"), np.datetime64(UNTIL, "D")
    dates = since + rng.integers(0, (UNTIL - SINCE).days + 1, len(micros))
    cuts = np.sort(rng.integers(0, len(micros) + 1, 20))
    counts = np.diff(np.concatenate([[0], cuts, [len(micros)]])).tolist()  # empty lines among them
    assert _points_text(dates, micros, counts=counts, since=since, until=until) == _expected(dates, micros, counts)


def test_closes_of_a_billion_or_more_are_formatted_one_by_one_as_before():
    since = np.datetime64(SINCE, "D")
    micros = np.array([10**15, 123, 2**53 - 1, -(2**53 - 1), 9 * 10**18], dtype="i8")
    dates = since + np.arange(len(micros))
    text = _points_text(dates, micros, counts=[2, 0, 3], since=since, until=np.datetime64(UNTIL, "D"))
    assert text == _expected(dates, micros, [2, 0, 3])
    assert '"close": "9007199254.740992"' in text[2]  # the double's rounding, as price_format writes it


def test_sparklines_thin_to_the_bound_and_read_as_their_json():
    days = np.datetime64(date(2026, 1, 1), "D") + np.arange(340)
    ids = np.array([5] * 340 + [7] * 3, dtype="i8")
    dates = np.concatenate([days, days[-3:]])
    micros = np.concatenate([np.arange(340) * 1_250_000 + 1, [10**15, 2_000_000, 2_500_000]]).astype("i8")
    prices = PriceRows.of(ids, day_numbers(dates), micros)
    lines = sparklines_make(prices, instrument_ids=[7, 5, 9, 10], since=SINCE, until=UNTIL)
    assert list(lines) == ["5", "7", "9", "10"]  # by id, as numbers
    assert lines["9"] == lines["10"] == []
    # A close of a billion formatted as before; the one dated after `until` left out.
    assert lines["7"] == [{"date": "2026-12-04", "close": "1000000000"}, {"date": "2026-12-05", "close": "2"}]
    line = lines["5"]
    assert len(line) <= SPARKLINE_POINTS_MAX and line[-1]["date"] == "2026-12-05"
    assert line[-1]["close"] == price_format(float(micros[338]) / 1_000_000)
    assert line[0]["date"] >= SINCE.isoformat()
    assert lines.json_text() == json.dumps(dict(lines))
    assert lines.json_text().startswith('{"5": [{"date": ')
    assert lines.decoded() == dict(lines)


@pytest.mark.django_db
def test_a_new_portfolios_sparkline_covers_the_instruments_last_3_months(portfolio):
    # given AAA with daily closes for 120 days, bought 10 days ago: a new portfolio
    aaa = InstrumentFactory(symbol="AAA")
    today = date(2024, 6, 30)
    closes_create(instrument=aaa, closes={today - timedelta(days=n): f"{100 + n}" for n in range(1, 120)})
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=today - timedelta(days=10), quantity=D("1"),
                       price=D("100"))

    data = chart_data_compute(chart_inputs_load(portfolio=portfolio, closes_before=today), today=today)

    line = data["sparklines"][str(aaa.pk)]
    # docs/api.md: "each held instrument's stored closes of the last 3 months, at most 60"
    assert line[0]["date"] <= "2024-04-01"  # observed: 2024-06-19, the close before the first trade
    assert len(line) >= 45  # observed: 11
