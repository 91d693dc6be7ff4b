"""Performance of hand-computed portfolios, loaded from the database: gains, fees, dividends, TWR, XIRR, FX, ranges.

Expected values are worked out by hand in the comments; TWR and money figures are also recomputed by an
independent exact-fraction reference (tests/charts/oracle.py) and XIRR with scipy's brentq, from the closes
and transactions written in the test, not from the code under test.
"""

import dataclasses
import json
import random
from datetime import date, timedelta
from decimal import Decimal as D

import numpy as np
import pytest
from scipy.optimize import brentq

from charts.compute import chart_data_compute, chart_series_compute
from charts.performance import _RangeInputs, _Sums, performance_compute, twr_growth_index
from charts.selectors import chart_inputs_load
from portfolio.ranges import PERFORMANCE_RANGES
from prices.fx import fx_rates_store
from tests.charts.factories import closes_create
from tests.charts.oracle import Book, Deal, cents, matches_rate
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
    # money in at work from its day's start: 1000 / 1001, 2200 / (1000 + 1101), 2400 / 2200
    # → 2,400,000 / 2,103,101 − 1
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
    # the buy's day 1000 / 1002 (its fee), then (540 + 359) / 1000: 899 / 1002 − 1
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
    # the first day 1000 / 1001 (its fee), flat for a year, then (0 + 1198) / 1000; days after the exit are
    # skipped: 1198 / 1001 − 1, as the money-weighted return over exactly a year
    assert whole["time_weighted_return"] == "0.196803"
    # −1001 and +1198 exactly 365 days apart: the annual rate is 1198 / 1001 − 1
    assert whole["money_weighted_return"] == "0.196803"
    assert rate(whole["money_weighted_return"]) == close_to(xirr_brentq(
        [(date(2023, 1, 2), -1001.0), (date(2024, 1, 2), 1198.0)]))
    # over the 365 days the money was in, not annualised: the range's 374 days from its base day (1 Jan 2023) would
    # compound the rate over the day before the buy and the 8 days after the sale too
    assert rate(whole["money_weighted_return_period"]) == close_to(1198 / 1001 - 1)

    # calendar years: 2023 ends holding 5 × 200 = 1000 (bought for 1001); 2024 starts from it. 2023's only
    # move is the buy's fee: 1000 / 1001 − 1
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
    # the fee is money paid in that buys nothing: 500 / (500 + 5)
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
    # from the 1102.20 paid: with the currency effect 1100 → 1200 → 1375 (1375 / 1102.20); without it, every
    # rate at 2 Jan's 1.10: 1100 → 1100 → 1210 (1210 / 1102.20)
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


def test_twr_and_xirr_match_an_independent_computation_with_a_close_every_day(portfolio):
    # given ten days with a close every day, two buys, a fee, a sell and a dividend
    aaa = InstrumentFactory(symbol="AAA")
    days = [date(2024, 1, d) for d in range(2, 12)]
    closes = ["100", "102", "101", "105", "105", "104", "108", "110", "109", "112.5"]
    closes_create(instrument=aaa, closes=dict(zip(days, closes, strict=True)))
    deals = [Deal(days[0], "AAA", "BUY", "10", "100", "1"), Deal(days[3], "AAA", "BUY", "5", "104", "1.5"),
             Deal(days[5], "AAA", "FEE", "0", "0", "3"), Deal(days[6], "AAA", "SELL", "8", "107", "2"),
             Deal(days[8], "AAA", "DIVIDEND", "7", "1", "0.7")]
    for deal in deals:
        buy(portfolio, aaa, deal.day, deal.quantity, deal.price, deal.fee, type=deal.kind)
    book = Book(symbols={"AAA": "USD"}, closes={"AAA": dict(zip(days, closes, strict=True))}, deals=deals)

    result = performance(portfolio, today=days[-1])

    whole = result["ranges"]["MAX"]
    assert matches_rate(whole["time_weighted_return"], book.twr(days[0] - timedelta(days=1), days[-1]))
    assert whole["net_performance"] == cents(book.net_performance(days[0] - timedelta(days=1), days[-1]))
    flows = [(day, float(book.flows(day)[1] - book.flows(day)[0])) for day in days if any(book.flows(day))]
    expected_xirr = xirr_brentq([*flows, (days[-1], float(book.value(days[-1])))])
    assert rate(whole["money_weighted_return"]) == close_to(expected_xirr)
    # a range that starts on a day with value: WTD from Sunday 7 Jan (value 15 × 104 = 1560)
    week = result["ranges"]["WTD"]
    assert (week["start"], week["value_start"]) == ("2024-01-08", "1560.00")
    assert matches_rate(week["time_weighted_return"], book.twr(date(2024, 1, 7), days[-1]))
    assert week["net_performance"] == cents(book.net_performance(date(2024, 1, 7), days[-1]))
    expected_week_xirr = xirr_brentq([(date(2024, 1, 7), -1560.0), *flows[-2:],
                                      (days[-1], float(book.value(days[-1])))])
    assert rate(week["money_weighted_return"]) == close_to(expected_week_xirr)


def test_money_paid_in_on_a_day_the_price_jumps_is_at_work_from_the_days_start(portfolio):
    # given one share bought at 10 (close 10); the next day the close jumps to 20 and a second share is bought
    # at 20; the day after the close is 15
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "1", "10")
    buy(portfolio, aaa, date(2024, 1, 3), "1", "20")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10", date(2024, 1, 3): "20", date(2024, 1, 4): "15"})

    whole = performance(portfolio, today=date(2024, 1, 4))["ranges"]["MAX"]

    # a day's closes cannot tell a trade before the day's move from one after it: the money paid in counts from
    # the day's start, 10 / 10, 40 / (10 + 20), 30 / 40 − 1 = 0 (had it counted from the day's end, the day's
    # gain would be divided by what was at work before it, (40 − 20) / 10, which a penny left in cash turns into
    # millions of percent: below)
    assert whole["time_weighted_return"] == "0.000000"
    assert (whole["value"], whole["net_performance"]) == ("30.00", "0.00")


def test_a_day_that_brings_money_into_a_portfolio_holding_a_penny_is_not_measured_against_the_penny(portfolio):
    # given what a withdrawal of the balance shown leaves behind, a fraction of a penny (here one share worth
    # 0.0085), held since January; on 1 March 10,000 shares more bought at 1, the day's close 1.014
    portfolio.base_currency = "GBP"
    portfolio.save()
    aaa = InstrumentFactory(symbol="AAA", currency="GBP")
    buy(portfolio, aaa, date(2024, 1, 2), "1", "0.0085")
    buy(portfolio, aaa, date(2024, 3, 1), "10000", "1")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "0.0085", date(2024, 3, 1): "1.014"})

    whole = performance(portfolio, today=date(2024, 3, 1))["ranges"]["MAX"]

    # 0.0085 / 0.0085, flat, then 10,001 × 1.014 / (0.0085 + 10,000) − 1 ≈ 1.4 %: the day's gain over the
    # money at work that day, not over the 0.0085 held the day before ((10,141.014 − 10,000) / 0.0085 − 1 ≈
    # 1,658,988 %)
    assert whole["time_weighted_return"] == f"{10001 * 1.014 / 10000.0085 - 1:.6f}"


def test_the_textbook_time_weighted_return_with_sparse_closes(portfolio):
    # given the same portfolio with no close on the day of the second buy: its own price (20) is that day's
    aaa = InstrumentFactory(symbol="AAA", provider="manual")
    buy(portfolio, aaa, date(2024, 1, 2), "1", "10")
    buy(portfolio, aaa, date(2024, 1, 4), "1", "20")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10", date(2024, 1, 3): "20", date(2024, 1, 5): "15"})

    whole = performance(portfolio, today=date(2024, 1, 5))["ranges"]["MAX"]

    # 20 / 10, then (40 − 20) / 20, then 30 / 40
    assert whole["time_weighted_return"] == "0.500000"


def test_a_hand_priced_instrument_is_valued_at_its_trades_until_its_first_close(portfolio):
    # given two buys of a hand-priced instrument (2 @ 142.90 + 1.60 on 22 Nov, 2 @ 136.60 + 1.60 on 30 Nov)
    # and one stored close, 148.90, three weeks after the first buy
    gem = InstrumentFactory(symbol="GEM", provider="manual", currency="CHF", exchange_mic="")
    portfolio.base_currency = "CHF"
    portfolio.save()
    deals = [Deal(date(2021, 11, 22), "GEM", "BUY", "2", "142.90", "1.60"),
             Deal(date(2021, 11, 30), "GEM", "BUY", "2", "136.60", "1.60")]
    for deal in deals:
        buy(portfolio, gem, deal.day, deal.quantity, deal.price, deal.fee)
    closes_create(instrument=gem, closes={date(2021, 12, 13): "148.90"})
    today = date(2021, 12, 18)

    inputs = chart_inputs_load(portfolio=portfolio)
    result = performance_compute(inputs, today=today)
    chart = chart_data_compute(inputs, today=today)

    whole = result["ranges"]["MAX"]
    # gross 4 × 148.90 − 285.80 − 273.20 = 36.60; net 36.60 − 3.20 = 33.40
    assert (whole["value"], whole["gross_performance"], whole["net_performance"], whole["fees"]) == (
        "595.60", "36.60", "33.40", "3.20")
    # every day is valued, none at 0: 2 × 142.90 until the second buy, 4 × 136.60 until the close, then 4 × 148.90
    values = {point["date"]: point["value"] for point in chart["ranges"]["MAX"]}
    expected = {}
    for n in range((today - date(2021, 11, 22)).days + 1):
        day = date(2021, 11, 22) + timedelta(days=n)
        expected[day.isoformat()] = ("285.80" if day < date(2021, 11, 30)
                                     else "546.40" if day < date(2021, 12, 13) else "595.60")
    assert values == expected
    # 285.80 / 287.40 (the first buy's fee), 285.80 → 285.80 ...; the second buy at 136.60 + 1.60:
    # 546.40 / (285.80 + 274.80); the close: 595.60 / 546.40
    book = Book(symbols={"GEM": "CHF"}, closes={"GEM": {date(2021, 12, 13): "148.90"}}, deals=deals)
    assert matches_rate(whole["time_weighted_return"], book.twr(date(2021, 11, 21), today))
    assert whole["time_weighted_return"] == "0.056518"
    assert chart["warnings"] == []


def test_a_two_for_one_split_keeps_the_value_continuous(portfolio):
    # given 10 bought at 200 on 2 Jan; stored closes are the real traded prices: 200, then 100 from the split
    # on 4 Jan (SPLIT of ratio 2 that day), 101 on 5 Jan
    aaa = InstrumentFactory(symbol="AAA")
    deals = [Deal(date(2024, 1, 2), "AAA", "BUY", "10", "200"), Deal(date(2024, 1, 4), "AAA", "SPLIT", "2")]
    for deal in deals:
        buy(portfolio, aaa, deal.day, deal.quantity, deal.price, type=deal.kind)
    closes = {date(2024, 1, 2): "200", date(2024, 1, 3): "200", date(2024, 1, 4): "100", date(2024, 1, 5): "101"}
    closes_create(instrument=aaa, closes=closes)

    inputs = chart_inputs_load(portfolio=portfolio)
    result = performance_compute(inputs, today=date(2024, 1, 5))
    chart = chart_data_compute(inputs, today=date(2024, 1, 5))

    values = {point["date"]: point["value"] for point in chart["ranges"]["MAX"]}
    assert values == {"2024-01-02": "2000.00", "2024-01-03": "2000.00", "2024-01-04": "2000.00",
                      "2024-01-05": "2020.00"}
    split_day = result["ranges"]["1D"]  # the 1D range of 5 Jan starts from 4 Jan: 2000
    assert split_day["value_start"] == "2000.00"
    whole = result["ranges"]["MAX"]
    assert (whole["value"], whole["net_performance"], whole["time_weighted_return"]) == ("2020.00", "20.00", "0.010000")
    book = Book(symbols={"AAA": "USD"}, closes={"AAA": closes}, deals=deals)
    assert matches_rate(whole["time_weighted_return"], book.twr(date(2024, 1, 1), date(2024, 1, 5)))
    # viewed on the split day itself, 4 Jan's own close prices the doubled position
    on_the_day = performance(portfolio, today=date(2024, 1, 4))["ranges"]
    assert (on_the_day["1D"]["value_start"], on_the_day["1D"]["value"], on_the_day["1D"]["net_performance"]) == (
        "2000.00", "2000.00", "0.00")


def test_a_split_divides_a_trade_price_carried_past_it(portfolio):
    # given a hand-priced instrument bought at 1200 with no stored close, a 10-for-1 split, then a buy at 125
    # and later a close of 130
    art = InstrumentFactory(symbol="ART", provider="manual")
    deals = [Deal(date(2024, 6, 3), "ART", "BUY", "1", "1200"), Deal(date(2024, 6, 10), "ART", "SPLIT", "10"),
             Deal(date(2024, 6, 12), "ART", "BUY", "2", "125")]
    for deal in deals:
        buy(portfolio, art, deal.day, deal.quantity, deal.price, type=deal.kind)
    closes_create(instrument=art, closes={date(2024, 6, 14): "130"})

    inputs = chart_inputs_load(portfolio=portfolio)
    result = performance_compute(inputs, today=date(2024, 6, 14))
    chart = chart_data_compute(inputs, today=date(2024, 6, 14))

    values = {point["date"]: point["value"] for point in chart["ranges"]["MAX"]}
    # 1 × 1200 until the split, 10 × 1200 / 10 from it, 12 × 125 after the buy, 12 × 130 on the close
    assert [values[f"2024-06-{d:02d}"] for d in range(3, 15)] == [
        "1200.00"] * 7 + ["1200.00", "1200.00", "1500.00", "1500.00", "1560.00"]
    whole = result["ranges"]["MAX"]
    book = Book(symbols={"ART": "USD"}, closes={"ART": {date(2024, 6, 14): "130"}}, deals=deals)
    assert matches_rate(whole["time_weighted_return"], book.twr(date(2024, 6, 2), date(2024, 6, 14)))
    assert whole["net_performance"] == cents(book.net_performance(date(2024, 6, 2), date(2024, 6, 14))) == "110.00"


def test_a_trade_in_another_currency_is_an_observation_at_its_days_rate(portfolio):
    # given a USD-quoted instrument with no close, bought in EUR on 2 Jan (1 EUR = 1.10 USD) and on 4 Jan
    # (1.20), in a USD portfolio, then a close of 125 USD on 5 Jan
    coin = InstrumentFactory(symbol="COIN", currency="USD", exchange_mic="", provider="manual")
    fx_rates_store(base="EUR", series={date(2024, 1, 2): {"USD": D("1.10")}, date(2024, 1, 4): {"USD": D("1.20")}})
    deals = [Deal(date(2024, 1, 2), "COIN", "BUY", "2", "100", "1", currency="EUR"),
             Deal(date(2024, 1, 4), "COIN", "BUY", "1", "100", currency="EUR")]
    for deal in deals:
        buy(portfolio, coin, deal.day, deal.quantity, deal.price, deal.fee, currency="EUR")
    closes_create(instrument=coin, closes={date(2024, 1, 5): "125"})

    inputs = chart_inputs_load(portfolio=portfolio)
    result = performance_compute(inputs, today=date(2024, 1, 5))
    chart = chart_data_compute(inputs, today=date(2024, 1, 5))

    values = {point["date"]: point["value"] for point in chart["ranges"]["MAX"]}
    # 100 EUR = 110 USD, then 120 USD: 220, 220, 360, 375
    assert values == {"2024-01-02": "220.00", "2024-01-03": "220.00", "2024-01-04": "360.00",
                      "2024-01-05": "375.00"}
    whole = result["ranges"]["MAX"]
    book = Book(symbols={"COIN": "USD"}, closes={"COIN": {date(2024, 1, 5): "125"}},
                rates={"EUR": {date(2024, 1, 2): "1.10", date(2024, 1, 4): "1.20"}}, deals=deals)
    assert matches_rate(whole["time_weighted_return"], book.twr(date(2024, 1, 1), date(2024, 1, 5)))
    # 375 − (220 + 1.10) − 120
    assert whole["net_performance"] == cents(book.net_performance(date(2024, 1, 1), date(2024, 1, 5))) == "33.90"
    # 220 / 221.10 (201 EUR paid), 360 / (220 + 120), 375 / 360; without the currency effect the euros paid on
    # 4 Jan count at the range's first EUR rate, 1.10: 220 / 221.10 · 360 / (220 + 110) · 375 / 360
    assert (whole["time_weighted_return"], whole["time_weighted_return_without_fx"]) == ("0.097454", "0.130710")


def test_a_realized_gain_is_rounded_once_half_even(portfolio):
    # given 1 bought at 10 and sold at 12.675: a realized gain of exactly 2.675
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "1", "10")
    sell(portfolio, aaa, date(2024, 1, 3), "1", "12.675")

    whole = performance(portfolio, today=date(2024, 1, 3))["ranges"]["MAX"]

    # never 2.67 (float64 holds 2.675 as 2.67499999…): half-even of the exact 2.675 is 2.68
    assert (whole["realized_gain"], whole["net_performance"], whole["gross_performance"]) == ("2.68", "2.68", "2.68")


def test_range_boundaries_with_a_frozen_today(portfolio):
    # given one share from 1 Jun 2022 whose close is a different number on each range's base day
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2022, 6, 1), "1", "1")
    closes_create(instrument=aaa, closes={
        date(2022, 6, 1): "1", date(2023, 3, 13): "2", date(2023, 12, 29): "3", date(2024, 2, 29): "4",
        date(2024, 3, 8): "5", date(2024, 3, 12): "6", date(2024, 3, 13): "7",
    })

    ranges = performance(portfolio, today=date(2024, 3, 13))["ranges"]  # a Wednesday

    assert {key: (ranges[key]["start"], ranges[key]["value_start"]) for key in PERFORMANCE_RANGES} == {
        "1D": ("2024-03-13", "6.00"),  # from Tuesday's close
        "WTD": ("2024-03-11", "5.00"),  # from Sunday: Friday's close carried
        "MTD": ("2024-03-01", "4.00"),  # from 29 February
        "YTD": ("2024-01-01", "3.00"),  # from 31 December: the 29th's close carried
        "1Y": ("2023-03-14", "2.00"),  # from 13 March 2023
        "5Y": ("2022-06-01", "0.00"),  # reaches before the first transaction: from it, like MAX
        "MAX": ("2022-06-01", "0.00"),
    }
    assert {key: ranges[key]["end"] for key in ranges if key not in PERFORMANCE_RANGES} == {
        "2022": "2022-12-31", "2023": "2023-12-31", "2024": "2024-03-13"}
    assert {ranges[key]["end"] for key in PERFORMANCE_RANGES} == {"2024-03-13"}
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

    assert [key for key in result["ranges"] if key not in PERFORMANCE_RANGES] == ["2020", "2022", "2023", "2024"]
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


def test_a_position_without_a_close_yet_is_valued_at_its_trade_price(portfolio):
    # given AAA held from 2 Jan, and NEWCO bought 5 @ 20 on 3 Jan whose first close (22) comes on 4 Jan
    aaa = InstrumentFactory(symbol="AAA")
    new = InstrumentFactory(symbol="NEWCO")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100")
    buy(portfolio, new, date(2024, 1, 3), "5", "20")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 4): "110"})
    closes_create(instrument=new, closes={date(2024, 1, 4): "22"})

    whole = performance(portfolio, today=date(2024, 1, 4))["ranges"]["MAX"]

    # value 1000, then 1000 + 5 × 20 (its buy is its price), then 1100 + 110: (1100 − 100) / 1000, 1210 / 1100
    assert whole["time_weighted_return"] == "0.100000"
    assert (whole["value"], whole["net_performance"], whole["unrealized_gain"]) == ("1210.00", "110.00", "110.00")


def test_a_position_without_any_observation_is_left_out_until_it_has_one(portfolio):
    # given AAA held from 2 Jan, and 5 NEWCO transferred in at price 0 (a gift: no price observation) on
    # 3 Jan with a 1 fee; NEWCO's first close (22, so 110) comes on 4 Jan
    aaa = InstrumentFactory(symbol="AAA")
    new = InstrumentFactory(symbol="NEWCO")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100")
    buy(portfolio, new, date(2024, 1, 3), "5", "0", "1")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 4): "110"})
    closes_create(instrument=new, closes={date(2024, 1, 4): "22"})

    whole = performance(portfolio, today=date(2024, 1, 4))["ranges"]["MAX"]

    # value 1000, 1000 (NEWCO left out: only its fee counts), then 1100 + 110 with NEWCO coming in at 110:
    # 1000 / (1000 + 1) · 1210 / (1000 + 110) − 1; never a day valued as if it were worth 0
    assert whole["time_weighted_return"] == "0.089001"
    # net: AAA's +100 and NEWCO's fee (its value came in as money, not as a gain); unrealized: 100 + (110 − 1)
    assert (whole["value"], whole["net_performance"], whole["unrealized_gain"]) == ("1210.00", "99.00", "209.00")


def test_nothing_to_measure_yet():
    result = performance(PortfolioFactory(base_currency="EUR"), today=date(2024, 1, 2))

    assert result["base_currency"] == "EUR"
    assert list(result["ranges"]) == list(PERFORMANCE_RANGES)
    assert result["ranges"]["MAX"]["value"] == "0.00"
    assert result["ranges"]["MAX"]["time_weighted_return"] is None
    assert result["ranges"]["MAX"]["money_weighted_return"] is None
    assert result["investment_by_month"] == []


def test_the_first_day_has_a_time_weighted_return_and_no_money_weighted_one(portfolio):
    # given 10 bought at 100 + 1 fee and the close at 100 on the first day, viewed that day: no time for an
    # XIRR; the money paid in was at work from the day's start: 1000 / 1001 − 1
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100", "1")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100"})

    whole = performance(portfolio, today=date(2024, 1, 2))["ranges"]["MAX"]

    assert whole["money_weighted_return"] is None
    assert whole["time_weighted_return"] == "-0.000999"
    assert (whole["net_performance"], whole["fees"]) == ("-1.00", "1.00")


def test_a_trade_dated_after_today_is_no_flow_of_todays_figures(portfolio):
    # given 10 AAA bought at 100 on 2 Jan, closes 100, 110, 120, and 5 more bought at 130 + 3 fee on 8 Jan: after
    # the day measured (entered ahead)
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100")
    buy(portfolio, aaa, date(2024, 1, 8), "5", "130", "3")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 3): "110", date(2024, 1, 4): "120"})

    whole = performance(portfolio, today=date(2024, 1, 4))["ranges"]["MAX"]

    # value 10 × 120 = 1200, money in 1000 only: gross and net 200, no fee; TWR 1200 / 1000 − 1
    assert (whole["value"], whole["gross_performance"], whole["net_performance"], whole["fees"]) == (
        "1200.00", "200.00", "200.00", "0.00")
    assert whole["time_weighted_return"] == "0.200000"


@pytest.mark.parametrize(("held_before", "range_key"), [(False, "YTD"), (False, "1Y"), (True, "YTD")])
def test_the_money_weighted_return_of_the_period_compounds_over_the_time_money_was_in(portfolio, held_before,
                                                                                    range_key):
    # given 10 bought at 100 on 1 March and worth 110 ten days later (after an earlier position sold out in 2023,
    # or with nothing before)
    aaa, old = InstrumentFactory(symbol="AAA"), InstrumentFactory(symbol="OLDP")
    if held_before:
        buy(portfolio, old, date(2023, 5, 2), "1", "50", "0")
        sell(portfolio, old, date(2023, 6, 1), "1", "50", "0")
        closes_create(instrument=old, closes={date(2023, 5, 2): "50", date(2023, 6, 1): "50"})
    buy(portfolio, aaa, date(2024, 3, 1), "10", "100", "0")
    closes_create(instrument=aaa, closes={date(2024, 3, 1): "100", date(2024, 3, 11): "110"})

    whole = performance(portfolio, today=date(2024, 3, 11))["ranges"][range_key]

    # then it is the +10 % earned, as the time-weighted return says, not that rate compounded over the range's idle
    # months (0.97 for YTD, 31.7 for 1Y)
    assert whole["time_weighted_return"] == "0.100000"
    assert whole["money_weighted_return_period"] == "0.100000"


def test_a_custody_fee_after_a_full_exit_is_no_minus_100_percent(portfolio):
    # given 10 AAA bought at 100 and all sold at 110 (+10 %), then a 5.00 custody fee charged with nothing held
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100")
    sell(portfolio, aaa, date(2024, 1, 12), "10", "110")
    buy(portfolio, aaa, date(2024, 2, 1), "0", "0", "5", type="FEE")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 12): "110"})

    whole = performance(portfolio, today=date(2024, 2, 5))["ranges"]["MAX"]

    # the money earned 1100 / 1000 while it was at work; the fee's day, with nothing held before or after it, is
    # skipped (its factor 0 / 5 made every range holding it −100 % for good)
    assert whole["net_performance"] == "95.00"
    assert whole["time_weighted_return"] == "0.100000"


def test_a_gift_not_priced_yet_recorded_first_with_its_fee_leaves_the_later_returns(portfolio, user):
    # given a house received as a gift (no price of its own: left out of the value) with a 500.00 notary fee, then
    # 10 AAA bought at 100, now at 110
    house = InstrumentFactory(symbol="HOUSE", provider="manual", owner=user)
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, house, date(2024, 1, 2), "1", "0", "500")
    buy(portfolio, aaa, date(2024, 1, 10), "10", "100")
    closes_create(instrument=aaa, closes={date(2024, 1, 10): "100", date(2024, 1, 20): "110"})

    whole = performance(portfolio, today=date(2024, 1, 20))["ranges"]["MAX"]

    # the fee's day skipped (nothing the value sees); then 1000 / 1000 and 1100 / 1000
    assert (whole["value"], whole["time_weighted_return"]) == ("1100.00", "0.100000")


def test_after_a_fee_on_an_empty_portfolio_the_growth_index_goes_on(portfolio):
    # given +10 % earned and everything sold, a 5.00 custody fee with nothing held, then 10 AAA bought again at
    # 110, now at 121
    aaa = InstrumentFactory(symbol="AAA")
    buy(portfolio, aaa, date(2024, 1, 2), "10", "100")
    sell(portfolio, aaa, date(2024, 1, 12), "10", "110")
    buy(portfolio, aaa, date(2024, 2, 1), "0", "0", "5", type="FEE")
    buy(portfolio, aaa, date(2024, 2, 5), "10", "110")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 12): "110",
                                          date(2024, 2, 5): "110", date(2024, 2, 20): "121"})
    inputs = chart_inputs_load(portfolio=portfolio)

    growth = twr_growth_index(inputs, series=chart_series_compute(inputs, today=date(2024, 2, 20)))

    # 1.1 from the first round trip, × 1.1 from the second (a benchmark comparison starting after 1 February
    # had no portfolio line: its growth was 0 from the fee's day on)
    assert growth[-1] == pytest.approx(1.21)



def test_running_totals_of_amounts_and_of_levels_are_the_sums_of_their_days():
    """charts.performance._Sums against adding the days up one by one: the amounts of scattered days, and a step
    function of levels carried over days as the invested line carries them (the same Decimal each day), changed
    on some days, set again to an equal value on others (another Decimal, the same figure) and to zero."""
    rng = random.Random(7)
    n_days = 400
    by_day = {day: D(rng.randint(-50_000, 50_000)) / 100 for day in rng.sample(range(n_days), 60)}
    levels, level = [], D("0")
    for _ in range(n_days):
        roll = rng.random()
        if roll < 0.05:
            level = D(rng.randint(0, 10_000_000)) / 10_000
        elif roll < 0.08:
            level = D(str(level))  # an equal level, another object
        elif roll < 0.09:
            level = D("0")
        levels.append(level)
    amounts, invested = _Sums(by_day), _Sums.of_levels(levels)
    assert amounts.by_day(n_days).tolist() == [float(by_day.get(day, 0)) for day in range(n_days)]
    for _ in range(300):
        b = rng.randint(-1, n_days - 2)
        e = rng.randint(b + 1, n_days - 1)
        assert amounts.between(b, e) == sum((by_day.get(day, D(0)) for day in range(b + 1, e + 1)), D(0))
        assert invested.between(b, e) == sum(levels[b + 1:e + 1], D(0))
    assert _Sums.of_levels([]).between(-1, 3) == 0 and _Sums({}).between(-1, 0) == 0


def steps(sums):
    return sums.at, sums.levels, sums.through


@pytest.mark.parametrize("more", ["carried", "changed", "equal", "none"])
def test_running_totals_of_levels_made_from_kept_ones_are_those_made_from_nothing(more):
    """_Sums.of_levels from the totals of a shorter line whose levels are the very objects it begins with (the book
    taken again, its invested line carried over a new day, or made again when a trade became dated) looks only at
    the days after them, and makes exactly what a line made from nothing makes; the kept totals are left as they
    were."""
    rng = random.Random(11)
    levels, level = [], D("0")
    for _ in range(300):
        if rng.random() < 0.1:
            level = D(rng.randint(0, 10_000_000)) / 10_000
        levels.append(level)
    kept = _Sums.of_levels(levels)
    before = [list(part) for part in steps(kept)]
    extra = {"carried": [levels[-1]] * 5, "changed": [levels[-1]] * 2 + [D("12.5")] * 3,
             "equal": [D(str(levels[-1]))] * 4, "none": []}[more]
    nothing = _Sums.of_levels([])
    assert steps(_Sums.of_levels(extra, kept=nothing)) == steps(_Sums.of_levels(extra)) and steps(nothing) == ([],) * 3
    longer = levels + extra
    made = _Sums.of_levels(longer, kept=kept)
    assert steps(made) == steps(_Sums.of_levels(longer))
    assert [list(part) for part in steps(kept)] == before
    for b in range(-1, len(longer) - 1, 7):
        assert made.between(b, len(longer) - 1) == sum(longer[b + 1:], D(0))
    # levels that are not the kept ones' objects (an equal line made again) are all looked at
    again = [D(str(x)) for x in longer]
    assert steps(_Sums.of_levels(again, kept=kept)) == steps(_Sums.of_levels(again))


def moved(value):
    """Another value of the same kind: what a field of a range's inputs could be instead."""
    if isinstance(value, np.ndarray):
        return value + 1
    if isinstance(value, date):
        return value + timedelta(days=1)
    if isinstance(value, tuple):
        return (*value, "JPY")
    if isinstance(value, dict):
        return {**value, "JPY": D("150.1")}
    if value is None:
        return D("1")
    return value + 1


def test_a_ranges_digest_is_made_of_every_one_of_its_inputs():
    """A past range's figures are taken again while its inputs' digest is the same (charts.performance
    _ranges_measure): any field of _RangeInputs, the one argument of what measures it, moved moves the digest — a
    field added and left out of the digest fails here."""
    days = 3
    inputs = _RangeInputs(
        first_counted=date(2023, 1, 1), end_day=date(2023, 1, 3), length=days, value_start=D("100"),
        value_end=D("110.5"), cost_end=D("90"), unrealized_end=D("20.5"), money_in=D("5"), money_out=D("1"),
        fees=D("0.5"), dividends=D("1"), realized=D("2"), capital=D("95"), start_fixed=None, end_fixed=D("110.5"),
        codes=("EUR", "USD"), fixed_exact={"EUR": D("1.1"), "USD": D("1")}, fixed=np.array([1.1, 1.0]),
        values=np.array([101.0, 105.0, 110.0]), inflows=np.array([5.0, 0, 0]), outflows=np.array([0, 1.0, 0]),
        rates=np.ones((days, 2)), value_local=np.ones((days, 2)), inflows_local=np.zeros((days, 2)),
        outflows_local=np.zeros((days, 2)))
    digest = inputs.digest()
    assert dataclasses.replace(inputs).digest() == digest
    for field in dataclasses.fields(_RangeInputs):
        changed = dataclasses.replace(inputs, **{field.name: moved(getattr(inputs, field.name))})
        assert changed.digest() != digest, field.name
