"""Performance of hand-computed portfolios, loaded from the database: gains, fees, dividends, TWR, XIRR, FX, ranges.

Expected values are worked out by hand in the comments; TWR and XIRR are also recomputed independently here
with numpy and scipy's brentq, from the closes and flows written in the test, not from the code under test.
"""

import json
from datetime import date
from decimal import Decimal as D

import numpy as np
import pytest
from scipy.optimize import brentq

from charts.performance import RANGES, performance_compute
from charts.selectors import chart_inputs_load
from prices.fx import fx_rates_store
from tests.charts.factories import closes_create
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def performance(portfolio, *, today: date):
    return performance_compute(chart_inputs_load(portfolio=portfolio), today=today)


def xirr_brentq(flows: list[tuple[date, float]]) -> float:
    """Annualised XIRR the spreadsheet way, Σ a (1 + r)^(−days/365) = 0, solved by scipy's brentq for
    x = ln(1 + r) (so the annualised rates of two-day ranges, 1e10 or −0.999999999, stay in the bracket)."""
    start = min(day for day, _ in flows)
    years = np.array([(day - start).days for day, _ in flows]) / 365
    amounts = np.array([amount for _, amount in flows])
    x = brentq(lambda x: float(np.sum(amounts * np.exp(-x * years))), -200, 200, xtol=1e-15, rtol=1e-15)
    return float(np.expm1(x))


def rate(value: str | None) -> float:
    assert value is not None
    return float(value)


def close_to(expected: float):
    """What a rate written with 6 decimals equals: within rounding, or 1e-9 relative for huge annualised ones."""
    return pytest.approx(expected, rel=1e-9, abs=5.000001e-7)


def buy(portfolio, instrument, day: date, quantity: str, price: str, fee: str = "0", **extra):
    TransactionFactory(portfolio=portfolio, instrument=instrument, date=day, quantity=D(quantity), price=D(price),
                       fee=D(fee), currency=extra.pop("currency", instrument.currency), **extra)


def sell(portfolio, instrument, day: date, quantity: str, price: str, fee: str = "0"):
    buy(portfolio, instrument, day, quantity, price, fee, type="SELL")


def test_buy_and_buy(portfolio):
    # given 10 AAA at 100 + 1 fee on 2 Jan, 10 more at 110 + 1 on 3 Jan; closes 100, 110, 120
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100", "1")
    buy(portfolio, aaa, date(2024, 1, 3), "10", "110", "1")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 3): "110", date(2024, 1, 4): "120"})

    result = performance(portfolio, today=date(2024, 1, 4))

    whole = result["ranges"]["MAX"]
    # value 20 × 120 = 2400; invested 1001 + 1101 = 2102; gross 2400 − 1000 − 1100 = 300; net 300 − 2 = 298
    assert {k: whole[k] for k in ("start", "end", "value_start", "value", "total_investment", "gross_performance",
                                  "net_performance", "fees", "dividends", "realized_gain", "unrealized_gain")} == {
        "start": "2024-01-02", "end": "2024-01-04", "value_start": "0.00", "value": "2400.00",
        "total_investment": "2102.00", "gross_performance": "300.00", "net_performance": "298.00", "fees": "2.00",
        "dividends": "0.00", "realized_gain": "0.00", "unrealized_gain": "298.00",
    }
    # invested 1001, 2102, 2102: mean 1735; 300 / 1735 and 298 / 1735
    assert whole["time_weighted_invested_capital"] == "1735.00"
    assert (whole["gross_performance_percent"], whole["net_performance_percent"]) == ("0.172911", "0.171758")
    # days: 1000 / (0 + 1001), 2200 / (1000 + 1101), 2400 / 2200 → 2 400 000 / 2 103 101 − 1
    assert whole["time_weighted_return"] == "0.141172"
    assert whole["time_weighted_return_without_fx"] == "0.141172"  # nothing foreign
    assert rate(whole["money_weighted_return"]) == close_to(xirr_brentq(
        [(date(2024, 1, 1), 0.0), (date(2024, 1, 2), -1001.0), (date(2024, 1, 3), -1101.0),
         (date(2024, 1, 4), 2400.0)]))

    one_day = result["ranges"]["1D"]
    # from 2200 at the end of 3 Jan to 2400: +200 on 2102 invested; TWR 2400 / 2200 − 1
    assert (one_day["start"], one_day["value_start"], one_day["net_performance"], one_day["net_performance_percent"],
            one_day["time_weighted_return"], one_day["fees"]) == (
        "2024-01-04", "2200.00", "200.00", "0.095147", "0.090909", "0.00")
    # over one day, the money-weighted return is the day's return; annualised it is (2400 / 2200)^365 − 1
    assert one_day["money_weighted_return_period"] == "0.090909"
    assert rate(one_day["money_weighted_return"]) == close_to((2400 / 2200) ** 365 - 1)
    json.dumps(result)  # cached as JSON with the chart data


def test_buy_and_sell_at_a_loss(portfolio):
    # given 10 at 100 + 2 fee (cost 1002), then 4 sold at 90 − 1 fee the next day, closing 100 then 90
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100", "2")
    sell(portfolio, aaa, date(2024, 1, 3), "4", "90", "1")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 3): "90"})

    whole = performance(portfolio, today=date(2024, 1, 3))["ranges"]["MAX"]

    # the sell removes 1002 × 4/10 = 400.80: realized 360 − 1 − 400.80 = −41.80; 6 left cost 601.20, worth 540
    assert (whole["value"], whole["total_investment"], whole["realized_gain"], whole["unrealized_gain"]) == (
        "540.00", "601.20", "-41.80", "-61.20")
    # gross 540 − 1000 + 360 = −100; net −100 − 3 = −103 = realized + unrealized
    assert (whole["gross_performance"], whole["net_performance"], whole["fees"]) == ("-100.00", "-103.00", "3.00")
    # invested 1002 then 601.20: mean 801.60
    assert (whole["gross_performance_percent"], whole["net_performance_percent"]) == ("-0.124750", "-0.128493")
    # days: 1000 / 1002, then (540 + 359) / 1000: 899 / 1002 − 1
    assert whole["time_weighted_return"] == "-0.102794"
    assert rate(whole["money_weighted_return"]) == close_to(xirr_brentq(
        [(date(2024, 1, 1), 0.0), (date(2024, 1, 2), -1002.0), (date(2024, 1, 3), 359.0 + 540.0)]))
    assert float(whole["money_weighted_return"]) < -0.99  # −10 % in two days, annualised


def test_full_exit_with_a_gain(portfolio):
    # given 5 bought at 200 + 1 fee on 2 Jan 2023, sold a year later at 240 − 2 fee, viewed on 10 Jan 2024
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2023, 1, 2), "5", "200", "1")
    sell(portfolio, aaa, date(2024, 1, 2), "5", "240", "2")
    closes_create(instrument=aaa, closes={date(2023, 1, 2): "200", date(2024, 1, 2): "240"})

    result = performance(portfolio, today=date(2024, 1, 10))

    whole = result["ranges"]["MAX"]
    # realized 1200 − 2 − 1001 = 197 = net; gross 197 + 3 = 200; nothing left
    assert (whole["value"], whole["total_investment"], whole["realized_gain"], whole["unrealized_gain"],
            whole["gross_performance"], whole["net_performance"], whole["fees"]) == (
        "0.00", "0.00", "197.00", "0.00", "200.00", "197.00", "3.00")
    # 1001 invested on 365 of the 374 days: 1001 × 365 / 374 = 976.91; 197 / that and 200 / that
    assert whole["time_weighted_invested_capital"] == "976.91"
    assert (whole["net_performance_percent"], whole["gross_performance_percent"]) == ("0.201656", "0.204727")
    # 1000 / 1001 on the first day, flat for a year, then (0 + 1198) / 1000; days after the exit are skipped
    assert whole["time_weighted_return"] == "0.196803"
    # −1001 and +1198 exactly 365 days apart: the annual rate is 1198 / 1001 − 1
    assert whole["money_weighted_return"] == "0.196803"
    assert rate(whole["money_weighted_return"]) == close_to(xirr_brentq(
        [(date(2023, 1, 2), -1001.0), (date(2024, 1, 2), 1198.0)]))
    # over the 374 days from the base day (1 Jan 2023) to the end, not annualised
    assert rate(whole["money_weighted_return_period"]) == close_to((1198 / 1001) ** (374 / 365) - 1)

    # calendar years: 2023 ends holding 5 × 200 = 1000 (bought for 1001); 2024 starts from it
    assert (result["ranges"]["2023"]["value"], result["ranges"]["2023"]["net_performance"],
            result["ranges"]["2023"]["time_weighted_return"]) == ("1000.00", "-1.00", "-0.000999")
    year = result["ranges"]["2024"]
    assert (year["start"], year["end"], year["value_start"], year["value"], year["gross_performance"],
            year["net_performance"], year["realized_gain"], year["time_weighted_return"]) == (
        "2024-01-01", "2024-01-10", "1000.00", "0.00", "200.00", "198.00", "197.00", "0.198000")
    # nothing held, nothing done on the last day: no return to measure, no rate of return
    assert (result["ranges"]["1D"]["time_weighted_return"], result["ranges"]["1D"]["money_weighted_return"],
            result["ranges"]["1D"]["net_performance_percent"]) == (None, None, None)
    assert result["ranges"]["1D"]["net_performance"] == "0.00"


def test_a_dividend_with_tax_withheld(portfolio):
    # given 10 at 50 held flat; on 15 Jan a dividend of 10 × 0.80 = 8 with 1.20 withheld: 6.80 paid out
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "50")
    buy(portfolio, aaa, date(2024, 1, 15), "10", "0.8", "1.2", type="DIVIDEND")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "50"})

    whole = performance(portfolio, today=date(2024, 1, 31))["ranges"]["MAX"]

    assert (whole["dividends"], whole["fees"], whole["gross_performance"], whole["net_performance"]) == (
        "8.00", "1.20", "8.00", "6.80")
    assert (whole["total_investment"], whole["unrealized_gain"], whole["realized_gain"]) == ("500.00", "0.00", "0.00")
    assert (whole["gross_performance_percent"], whole["net_performance_percent"]) == ("0.016000", "0.013600")
    # the dividend leaves at the end of its day: (500 + 6.80) / 500
    assert whole["time_weighted_return"] == "0.013600"
    assert rate(whole["money_weighted_return"]) == close_to(xirr_brentq(
        [(date(2024, 1, 2), -500.0), (date(2024, 1, 15), 6.8), (date(2024, 1, 31), 500.0)]))


def test_a_lone_fee(portfolio):
    # given 10 at 50 held flat, and a 5 custody fee on 10 Jan
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "50")
    buy(portfolio, aaa, date(2024, 1, 10), "0", "0", "5", type="FEE")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "50"})

    result = performance(portfolio, today=date(2024, 1, 31))

    whole = result["ranges"]["MAX"]
    assert (whole["fees"], whole["gross_performance"], whole["net_performance"], whole["net_performance_percent"]) == (
        "5.00", "0.00", "-5.00", "-0.010000")
    # the fee is money paid in at the start of its day that buys nothing: 500 / (500 + 5)
    assert whole["time_weighted_return"] == "-0.009901"
    assert rate(whole["money_weighted_return"]) == close_to(xirr_brentq(
        [(date(2024, 1, 2), -500.0), (date(2024, 1, 10), -5.0), (date(2024, 1, 31), 500.0)]))
    # the fee is not invested money
    assert result["investment_by_month"] == [{"period": "2024-01", "investment": "500.00"}]


def test_a_position_bought_in_euros_with_the_rate_moving(portfolio):
    # given 1 EUR = 1.10, 1.20, 1.25 USD on 2, 3, 4 Jan; 10 SAP bought at 100 EUR + 2 EUR fee on 2 Jan;
    # closes 100, (carried) 100, 110 EUR
    sap = InstrumentFactory(symbol="SAP", currency="EUR", exchange_mic="XETR")
    fx_rates_store(base="EUR", series={date(2024, 1, 2): {"USD": D("1.10")}, date(2024, 1, 3): {"USD": D("1.20")},
                                       date(2024, 1, 4): {"USD": D("1.25")}})
    buy(portfolio, sap, date(2024, 1, 2), "10", "100", "2")
    closes_create(instrument=sap, closes={date(2024, 1, 2): "100", date(2024, 1, 4): "110"})

    result = performance(portfolio, today=date(2024, 1, 4))

    whole = result["ranges"]["MAX"]
    # value 1100, 1200, 1375 USD; cost 1002 EUR × 1.10 = 1102.20 USD, fee 2.20 USD
    assert (whole["value"], whole["total_investment"], whole["fees"], whole["gross_performance"],
            whole["net_performance"], whole["unrealized_gain"]) == (
        "1375.00", "1102.20", "2.20", "275.00", "272.80", "272.80")
    # with the currency effect: 1375 / 1102.20 − 1; without it, every rate at 2 Jan's 1.10: 1210 / 1102.20 − 1
    assert whole["time_weighted_return"] == "0.247505"
    assert whole["time_weighted_return_without_fx"] == "0.097804"
    # 1D: 1200 → 1375 with the rate; at 4 Jan's rate (1.25) throughout, the 10 % rise of the close alone
    one_day = result["ranges"]["1D"]
    assert (one_day["time_weighted_return"], one_day["time_weighted_return_without_fx"]) == ("0.145833", "0.100000")


def test_a_mixed_currency_portfolio_without_the_currency_effect(portfolio):
    # given a USD holding that doubles and a EUR one flat in EUR while the euro rises 10 %
    aaa = InstrumentFactory(symbol="AAA")
    sap = InstrumentFactory(symbol="SAP", currency="EUR")
    fx_rates_store(base="EUR", series={date(2024, 1, 2): {"USD": D("1.00")}, date(2024, 1, 3): {"USD": D("1.10")}})
    buy(portfolio, aaa, date(2024, 1, 2), "1", "100")
    buy(portfolio, sap, date(2024, 1, 2), "1", "100")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 3): "200"})
    closes_create(instrument=sap, closes={date(2024, 1, 2): "100"})

    whole = performance(portfolio, today=date(2024, 1, 3))["ranges"]["MAX"]

    # with: 200 → 310 (+55 %); without: 200 → 300 (+50 %)
    assert (whole["time_weighted_return"], whole["time_weighted_return_without_fx"]) == ("0.550000", "0.500000")


def test_twr_and_xirr_match_an_independent_computation(portfolio):
    # given ten days with a close every day, two buys, a sell, a dividend and a fee
    aaa = InstrumentFactory(symbol="AAA")
    days = [date(2024, 1, d) for d in range(2, 12)]
    closes = np.array([100, 102, 101, 105, 105, 104, 108, 110, 109, 112.5])
    closes_create(instrument=aaa, closes={day: str(close) for day, close in zip(days, closes, strict=True)})
    buy(portfolio, aaa, days[0], "10", "100", "1")
    buy(portfolio, aaa, days[3], "5", "104", "1.5")
    buy(portfolio, aaa, days[5], "0", "0", "3", type="FEE")
    sell(portfolio, aaa, days[6], "8", "107", "2")
    buy(portfolio, aaa, days[8], "7", "1", "0.7", type="DIVIDEND")

    result = performance(portfolio, today=days[-1])

    held = np.array([10, 10, 10, 15, 15, 15, 7, 7, 7, 7])
    value = held * closes
    inflows = np.zeros(10)
    outflows = np.zeros(10)
    inflows[[0, 3, 5]] = [1001, 521.5, 3]
    outflows[[6, 8]] = [8 * 107 - 2, 7 - 0.7]
    previous = np.concatenate([[0.0], value[:-1]])
    expected_twr = np.prod((value + outflows) / (previous + inflows)) - 1
    whole = result["ranges"]["MAX"]
    assert rate(whole["time_weighted_return"]) == close_to(expected_twr)
    flows = [(day, out - inflow) for day, out, inflow in zip(days, outflows, inflows, strict=True) if out or inflow]
    expected_xirr = xirr_brentq([*flows, (days[-1], float(value[-1]))])
    assert rate(whole["money_weighted_return"]) == close_to(expected_xirr)
    # net performance is value − money put in + money taken out
    assert whole["net_performance"] == f"{value[-1] - inflows.sum() + outflows.sum():.2f}"
    # a range that starts on a day with value: WTD from Sunday 7 Jan (value 15 × 104 = 1560)
    week = result["ranges"]["WTD"]
    assert (week["start"], week["value_start"]) == ("2024-01-08", "1560.00")
    in_week = slice(6, 10)  # 8 to 11 Jan
    expected_week = np.prod((value + outflows)[in_week] / (previous + inflows)[in_week]) - 1
    assert rate(week["time_weighted_return"]) == close_to(expected_week)
    expected_week_xirr = xirr_brentq([(date(2024, 1, 7), -1560.0), *flows[-2:], (days[-1], float(value[-1]))])
    assert rate(week["money_weighted_return"]) == close_to(expected_week_xirr)


def test_range_boundaries_with_a_frozen_today(portfolio):
    # given one share from 1 Jun 2022 whose close is a different number on each range's base day
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2022, 6, 1), "1", "1")
    closes_create(instrument=aaa, closes={
        date(2022, 6, 1): "1", date(2023, 3, 13): "2", date(2023, 12, 29): "3", date(2024, 2, 29): "4",
        date(2024, 3, 8): "5", date(2024, 3, 12): "6", date(2024, 3, 13): "7",
    })

    ranges = performance(portfolio, today=date(2024, 3, 13))["ranges"]  # a Wednesday

    assert {key: (ranges[key]["start"], ranges[key]["value_start"]) for key in RANGES} == {
        "1D": ("2024-03-13", "6.00"),  # from Tuesday's close
        "WTD": ("2024-03-11", "5.00"),  # from Sunday: Friday's close carried
        "MTD": ("2024-03-01", "4.00"),  # from 29 February
        "YTD": ("2024-01-01", "3.00"),  # from 31 December: the 29th's close carried
        "1Y": ("2023-03-14", "2.00"),  # from 13 March 2023
        "5Y": ("2022-06-01", "0.00"),  # reaches before the first transaction: from it, like MAX
        "MAX": ("2022-06-01", "0.00"),
    }
    assert {key: ranges[key]["end"] for key in ranges if key not in RANGES} == {
        "2022": "2022-12-31", "2023": "2023-12-31", "2024": "2024-03-13"}
    assert {ranges[key]["end"] for key in RANGES} == {"2024-03-13"}
    assert ranges["YTD"]["time_weighted_return"] == "1.333333"  # 3 → 7
    assert ranges["2023"]["start"] == "2023-01-01" and ranges["2023"]["value_start"] == "1.00"
    assert ranges["2023"]["time_weighted_return"] == "2.000000"  # 1 → 3

    monday = performance(portfolio, today=date(2024, 3, 11))["ranges"]
    assert monday["WTD"]["start"] == monday["1D"]["start"] == "2024-03-11"
    sunday = performance(portfolio, today=date(2024, 3, 17))["ranges"]
    assert sunday["WTD"]["start"] == "2024-03-11"  # the ISO week runs Monday to Sunday
    first_of_month = performance(portfolio, today=date(2024, 3, 1))["ranges"]
    assert first_of_month["MTD"]["start"] == "2024-03-01" and first_of_month["MTD"]["value_start"] == "4.00"


def test_calendar_years_are_those_with_activity(portfolio):
    # given a position opened and closed in 2020, nothing in 2021, a new one from 2022, viewed in 2024
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2020, 3, 2), "2", "10")
    sell(portfolio, aaa, date(2020, 9, 1), "2", "15")
    buy(portfolio, aaa, date(2022, 5, 2), "1", "20")
    closes_create(instrument=aaa, closes={date(2020, 3, 2): "10", date(2020, 9, 1): "15", date(2022, 5, 2): "20",
                                          date(2023, 12, 29): "25"})

    result = performance(portfolio, today=date(2024, 2, 1))

    assert [key for key in result["ranges"] if key not in RANGES] == ["2020", "2022", "2023", "2024"]
    assert result["ranges"]["2020"]["realized_gain"] == "10.00"
    assert result["ranges"]["2020"]["end"] == "2020-12-31"
    # held all through 2023 without a transaction: 20 → 25
    assert (result["ranges"]["2023"]["net_performance"], result["ranges"]["2023"]["time_weighted_return"]) == (
        "5.00", "0.250000")


def test_investment_by_month_and_by_year(portfolio):
    # given 1000 invested in Nov 2023, 1202 in Jan 2024, and 5 of 20 sold in Feb (cost 2202 × 5/20 = 550.50)
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2023, 11, 15), "10", "100")
    buy(portfolio, aaa, date(2024, 1, 10), "10", "120", "2")
    sell(portfolio, aaa, date(2024, 2, 20), "5", "130")

    result = performance(portfolio, today=date(2024, 3, 5))

    assert result["investment_by_month"] == [
        {"period": "2023-11", "investment": "1000.00"}, {"period": "2023-12", "investment": "0.00"},
        {"period": "2024-01", "investment": "1202.00"}, {"period": "2024-02", "investment": "-550.50"},
        {"period": "2024-03", "investment": "0.00"},
    ]
    assert result["investment_by_year"] == [{"period": "2023", "investment": "1000.00"},
                                            {"period": "2024", "investment": "651.50"}]


def test_a_position_without_a_close_yet_is_left_out_until_it_has_one(portfolio):
    # given AAA held from 2 Jan, and NEWCO bought for 100 on 3 Jan whose first close (22, so 110) comes on 4 Jan
    aaa = InstrumentFactory(symbol="AAA")
    new = InstrumentFactory(symbol="NEWCO")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100")
    buy(portfolio, new, date(2024, 1, 3), "5", "20")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 4): "110"})
    closes_create(instrument=new, closes={date(2024, 1, 4): "22"})

    whole = performance(portfolio, today=date(2024, 1, 4))["ranges"]["MAX"]

    # value 1000, 1000 (NEWCO left out, so is its buy), then 1100 + 110 with NEWCO coming in at 110:
    # 1210 / (1000 + 110) − 1, never the −9 % a buy into nothing would show
    assert whole["time_weighted_return"] == "0.090090"
    assert (whole["value"], whole["net_performance"], whole["unrealized_gain"]) == ("1210.00", "100.00", "110.00")


def test_nothing_to_measure_yet():
    result = performance(PortfolioFactory(base_currency="EUR"), today=date(2024, 1, 2))

    assert result["base_currency"] == "EUR"
    assert list(result["ranges"]) == list(RANGES)
    assert result["ranges"]["MAX"]["value"] == "0.00"
    assert result["ranges"]["MAX"]["time_weighted_return"] is None
    assert result["ranges"]["MAX"]["money_weighted_return"] is None
    assert result["investment_by_month"] == []


def test_a_same_day_round_trip_has_no_rate_of_return_but_a_time_weighted_one(portfolio):
    # given 10 bought at 100 and the close at 100 on the first day, viewed that day: no time for an XIRR
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100", "1")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100"})

    whole = performance(portfolio, today=date(2024, 1, 2))["ranges"]["MAX"]

    assert whole["money_weighted_return"] is None
    assert whole["time_weighted_return"] == "-0.000999"  # 1000 / 1001 − 1: the fee
