"""The portfolio's time-weighted return against its benchmark, through chart generation."""

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from charts.benchmark import benchmark_compare, benchmark_live_base
from charts.cache import chart_data_get
from charts.compute import chart_data_compute, chart_series_compute
from charts.performance import performance_compute, twr_growth_index
from charts.selectors import benchmark_closes_load, chart_inputs_load
from charts.services import chart_data_generate
from tests.charts.factories import closes_create
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def test_portfolio_and_benchmark_returns_from_the_range_start(api, portfolio):
    today = timezone.localdate()
    stock = InstrumentFactory(symbol="STK", exchange_mic="")
    index = InstrumentFactory(symbol="IDX", exchange_mic="")
    TransactionFactory(portfolio=portfolio, instrument=stock, date=today - timedelta(days=3),
                       quantity=Decimal("10"), price=Decimal("100"))
    # a second buy mid-way: money-weighted and time-weighted differ, the line must not jump with it
    TransactionFactory(portfolio=portfolio, instrument=stock, date=today - timedelta(days=1),
                       quantity=Decimal("10"), price=Decimal("110"))
    for days_ago, stock_close, index_close in ((3, "100", "50"), (2, "110", "55"), (1, "110", None), (0, "121", "60")):
        PriceFactory(instrument=stock, date=today - timedelta(days=days_ago), close=Decimal(stock_close))
        if index_close:
            PriceFactory(instrument=index, date=today - timedelta(days=days_ago), close=Decimal(index_close))
    assert api.patch(f"/api/portfolios/{portfolio.pk}/", {"benchmark": "IDX"}, format="json").status_code == 200

    chart_data_generate(portfolio_id=portfolio.pk)

    body = api.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M").json()
    assert body["benchmark"]["symbol"] == "IDX"
    points = {p["date"]: (p["portfolio"], p["benchmark"]) for p in body["benchmark"]["series"]}
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    assert points[day(3)] == ("0.000000", "0.000000")
    assert points[day(2)] == ("0.100000", "0.100000")
    assert points[day(1)] == ("0.100000", "0.100000")  # the index's close carried over its holiday
    assert points[day(0)] == ("0.210000", "0.200000")  # 1.1 × 1.1 − 1; 60 / 50 − 1
    assert chart_data_get(portfolio_id=portfolio.pk)["benchmark"]["ranges"]["MAX"][0]["portfolio"] == "0.000000"


def test_without_a_benchmark_there_is_none(api, portfolio):
    TransactionFactory(portfolio=portfolio)
    chart_data_generate(portfolio_id=portfolio.pk)
    assert api.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=1Y").json()["benchmark"] is None


def test_ytd_is_measured_from_31_december_so_its_last_point_is_the_ytd_time_weighted_return():
    # given a series from 30 December to 2 January whose value moves on 1 January (a coin trades every day)
    days = np.array(["2023-12-30", "2023-12-31", "2024-01-01", "2024-01-02"], dtype="M8[D]")
    growth = np.array([1.0, 1.0, 1.1, 1.21])
    close_dates, closes = days.copy(), np.array([50.0, 50.0, 55.0, 60.0])
    ranges = {"YTD": [{"date": "2024-01-01"}, {"date": "2024-01-02"}],
              "1M": [{"date": str(day)} for day in days]}

    compared = benchmark_compare(symbol="IDX", days=days, growth=growth, close_dates=close_dates, closes=closes,
                                 ranges=ranges)["ranges"]
    live = benchmark_live_base(instrument_id=1, days=days, growth=growth, close_dates=close_dates, closes=closes,
                               ranges=ranges)

    # then YTD's lines count 1 January's move (1.21 − 1, the YTD TWR; 60 / 50 − 1), other ranges start at 0
    assert [(p["portfolio"], p["benchmark"]) for p in compared["YTD"]] == [("0.100000", "0.100000"),
                                                                          ("0.210000", "0.200000")]
    assert (compared["1M"][0]["portfolio"], compared["1M"][-1]["portfolio"]) == ("0.000000", "0.210000")
    assert live["ranges"]["YTD"] == (1.0, 50.0) and live["ranges"]["1M"] == (1.0, 50.0)


def test_the_max_comparison_ends_at_the_max_time_weighted_return(portfolio):
    # given 10 AAA bought at 100 (+1 fee) on 2 Jan, closing at 110 that day and 121 on 10 Jan; SPY as benchmark
    today = date(2024, 1, 10)
    aaa, spy = InstrumentFactory(symbol="AAA"), InstrumentFactory(symbol="SPY")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=Decimal("10"),
                       price=Decimal("100"), fee=Decimal("1"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "110", today: "121"})
    closes_create(instrument=spy, closes={date(2024, 1, 2): "400", today: "404"})
    portfolio.benchmark = spy
    portfolio.save()

    inputs = chart_inputs_load(portfolio=portfolio)
    series = chart_series_compute(inputs, today=today)
    chart = chart_data_compute(inputs, today=today, series=series)
    dates, closes = benchmark_closes_load(instrument_id=spy.pk, start=series.first)
    compared = benchmark_compare(symbol="SPY", days=series.days, growth=twr_growth_index(inputs, series=series),
                                 close_dates=dates, closes=closes, ranges=chart["ranges"])
    twr = performance_compute(inputs, today=today)["ranges"]["MAX"]["time_weighted_return"]

    # the MAX return: 1100 / 1001 · 1210 / 1100 − 1 = 20.88 %, and the comparison's portfolio line, measured from
    # the day before the first (it said 1210 / 1100 − 1 = 10 %, the first day's fee and move left out); SPY's
    # from its last close before that day, none here: from its first, 400
    assert (compared["ranges"]["MAX"][0]["portfolio"], compared["ranges"]["MAX"][-1]["portfolio"]) == (
        "0.098901", twr)
    assert twr == "0.208791"
    assert compared["ranges"]["MAX"][-1]["benchmark"] == "0.010000"


def test_a_1y_comparison_of_a_portfolio_begun_on_the_1y_base_day_ends_at_the_1y_twr(portfolio):
    # given 10 AAA bought at 100 on 15 Jun 2023, closing 110 that day and 121 on 14 Jun 2024; viewed 15 Jun 2024:
    # the 1Y range's base day is 15 Jun 2023, the portfolio's first day
    today = date(2024, 6, 15)
    aaa, spy = InstrumentFactory(symbol="AAA"), InstrumentFactory(symbol="SPY")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2023, 6, 15), quantity=Decimal("10"),
                       price=Decimal("100"))
    closes_create(instrument=aaa, closes={date(2023, 6, 15): "110", date(2024, 6, 14): "121"})
    closes_create(instrument=spy, closes={date(2023, 6, 14): "400", date(2023, 6, 15): "400",
                                          date(2024, 6, 14): "404"})

    inputs = chart_inputs_load(portfolio=portfolio, closes_before=today)
    series = chart_series_compute(inputs, today=today)
    chart = chart_data_compute(inputs, today=today, series=series)
    dates, closes = benchmark_closes_load(instrument_id=spy.pk, start=series.first, closes_before=today)
    compared = benchmark_compare(symbol="SPY", days=series.days, growth=twr_growth_index(inputs, series=series),
                                 close_dates=dates, closes=closes, ranges=chart["ranges"])
    one_year = performance_compute(inputs, today=today)["ranges"]["1Y"]

    assert chart["ranges"]["1Y"][0]["date"] == "2023-06-15" and one_year["start"] == "2023-06-16"
    assert one_year["time_weighted_return"] == "0.100000"  # 1210 / 1100 - 1, from the end of the base day
    # docs/holdings.md: the comparison's line is drawn "from the same daily factors as time_weighted_return,
    # each range's from its first point": its last point is the range's TWR; observed 0.210000 (from 1000)
    assert compared["ranges"]["1Y"][-1]["portfolio"] == one_year["time_weighted_return"]
