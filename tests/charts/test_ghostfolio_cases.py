"""Ghostfolio's public portfolio-calculator cases, reproduced as Folio transactions and stored closes.

Source: github.com/ghostfolio/ghostfolio, apps/api/src/app/portfolio/calculator/roai/*.spec.ts (activities and
expected figures) and apps/api/src/app/portfolio/current-rate.service.mock.ts (their market data). Only the
closes their market data has are stored — none is added for a trade day it lacks: on such days the trade
itself is the price observation, as in Folio.

Gross and net performance must be theirs to the cent. Where a figure differs by a convention of Folio's, the
test says which and asserts the difference exactly.
"""

from datetime import date
from decimal import Decimal as D

import pytest

from charts.compute import chart_data_compute
from charts.performance import performance_compute
from charts.selectors import chart_inputs_load
from prices.fx import fx_rates_store
from tests.charts.factories import closes_create
from tests.charts.oracle import Book, Deal, matches_rate
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory

pytestmark = pytest.mark.django_db

# Their mock's BALN.SW closes (CHF).
BALN_CLOSES = {date(2021, 11, 12): "146", date(2021, 11, 22): "142.9", date(2021, 11, 26): "139.9",
               date(2021, 11, 30): "136.6", date(2021, 12, 12): "142.0", date(2021, 12, 17): "143.9",
               date(2021, 12, 18): "148.9"}


def portfolio_of(*, base: str, symbol: str, currency: str, deals: list[Deal], closes: dict[date, str],
                 provider: str = "yahoo"):
    portfolio = PortfolioFactory(base_currency=base)
    instrument = InstrumentFactory(symbol=symbol, currency=currency, exchange_mic="", provider=provider)
    for deal in deals:
        TransactionFactory(portfolio=portfolio, instrument=instrument, type=deal.kind, date=deal.day,
                           quantity=D(deal.quantity), price=D(deal.price), fee=D(deal.fee),
                           currency=deal.currency or currency)
    closes_create(instrument=instrument, closes=closes)
    return portfolio


def figures(portfolio, *, today: date) -> tuple[dict, dict]:
    """The performance ranges, and the chart's value points of every range (1Y and shorter are daily)."""
    inputs = chart_inputs_load(portfolio=portfolio)
    performance = performance_compute(inputs, today=today)["ranges"]
    chart = {p["date"]: p["value"] for points in chart_data_compute(inputs, today=today)["ranges"].values()
             for p in points}
    return performance, chart


def test_baln_buy_and_buy():
    # portfolio-calculator-baln-buy-and-buy.spec.ts: 2 @ 142.9 + 1.55 on 22 Nov, 2 @ 136.6 + 1.65 on 30 Nov
    deals = [Deal(date(2021, 11, 22), "BALN.SW", "BUY", "2", "142.9", "1.55"),
             Deal(date(2021, 11, 30), "BALN.SW", "BUY", "2", "136.6", "1.65")]
    portfolio = portfolio_of(base="CHF", symbol="BALN.SW", currency="CHF", deals=deals, closes=BALN_CLOSES)

    performance, _ = figures(portfolio, today=date(2021, 12, 18))

    whole = performance["MAX"]
    # theirs: value 595.6, gross 36.6, net 33.4, fees 3.2
    assert (whole["value"], whole["gross_performance"], whole["net_performance"], whole["fees"]) == (
        "595.60", "36.60", "33.40", "3.20")
    # Their investment (559) leaves fees out; Folio's invested capital is the cost basis, fees included.
    assert whole["total_investment"] == "562.20"
    book = Book(symbols={"BALN.SW": "CHF"}, closes={"BALN.SW": BALN_CLOSES}, deals=deals)
    assert matches_rate(whole["time_weighted_return"], book.twr(date(2021, 11, 21), date(2021, 12, 18)))


def test_baln_buy_and_sell():
    # portfolio-calculator-baln-buy-and-sell.spec.ts: 2 @ 142.9 + 1.55 on 22 Nov, sold @ 136.6 − 1.65 on 30 Nov
    deals = [Deal(date(2021, 11, 22), "BALN.SW", "BUY", "2", "142.9", "1.55"),
             Deal(date(2021, 11, 30), "BALN.SW", "SELL", "2", "136.6", "1.65")]
    portfolio = portfolio_of(base="CHF", symbol="BALN.SW", currency="CHF", deals=deals, closes=BALN_CLOSES)

    performance, _ = figures(portfolio, today=date(2021, 12, 18))

    whole = performance["MAX"]
    # theirs: gross −12.6, net −15.8, nothing left
    assert (whole["value"], whole["gross_performance"], whole["net_performance"], whole["fees"]) == (
        "0.00", "-12.60", "-15.80", "3.20")
    assert (whole["total_investment"], whole["realized_gain"]) == ("0.00", "-15.80")


def test_novn_buy_and_sell_a_full_exit_without_any_close_while_held():
    # portfolio-calculator-novn-buy-and-sell.spec.ts (test/import/ok-novn-buy-and-sell.json): 2 @ 75.8 on
    # 7 Mar 2022, both sold @ 85.73 on 8 Apr 2022; their market data has a single close, 87.8 on 11 Apr
    deals = [Deal(date(2022, 3, 7), "NOVN.SW", "BUY", "2", "75.8"),
             Deal(date(2022, 4, 8), "NOVN.SW", "SELL", "2", "85.73")]
    portfolio = portfolio_of(base="CHF", symbol="NOVN.SW", currency="CHF", deals=deals,
                             closes={date(2022, 4, 11): "87.8"})

    performance, chart = figures(portfolio, today=date(2022, 4, 11))

    whole = performance["MAX"]
    # theirs: gross = net = 19.86
    assert (whole["gross_performance"], whole["net_performance"], whole["value"]) == ("19.86", "19.86", "0.00")
    # Folio values the held days at the buy (2 × 75.8); Ghostfolio values a day without a known price at a
    # later one (their day 1 is 2 × 87.8 = 175.6). Folio never uses a price from the future.
    assert chart["2022-03-07"] == chart["2022-04-07"] == "151.60"
    assert chart["2022-04-08"] == "0.00"
    book = Book(symbols={"NOVN.SW": "CHF"}, closes={"NOVN.SW": {date(2022, 4, 11): "87.8"}}, deals=deals)
    assert matches_rate(whole["time_weighted_return"], book.twr(date(2022, 3, 6), date(2022, 4, 11)))
    assert whole["time_weighted_return"] == "0.131003"  # 171.46 / 151.6 − 1, their 0.13100263852…


def test_msft_buy_with_dividend():
    # portfolio-calculator-msft-buy-with-dividend.spec.ts: 1 @ 298.58 + 19 on 16 Sep 2021, a 0.62 dividend
    # on 16 Nov 2021; their MSFT closes
    deals = [Deal(date(2021, 9, 16), "MSFT", "BUY", "1", "298.58", "19"),
             Deal(date(2021, 11, 16), "MSFT", "DIVIDEND", "1", "0.62")]
    portfolio = portfolio_of(base="USD", symbol="MSFT", currency="USD", deals=deals, closes={
        date(2021, 9, 16): "89.12", date(2021, 11, 16): "339.51", date(2023, 7, 9): "337.22",
        date(2023, 7, 10): "331.83"})

    performance, _ = figures(portfolio, today=date(2023, 7, 10))

    whole = performance["MAX"]
    # theirs: gross 33.25, net 14.25 — the price gain alone. Folio counts dividends in the performance (total
    # return) and reports them apart as well: gross and net are theirs + the 0.62 dividend, exactly.
    theirs_gross, theirs_net, dividend = D("33.25"), D("14.25"), D("0.62")
    assert whole["dividends"] == "0.62"
    assert (D(whole["gross_performance"]), D(whole["net_performance"])) == (
        theirs_gross + dividend, theirs_net + dividend)
    assert whole["value"] == "331.83"
    # their 1d and wtd (10 Jul 2023 is a Monday): −5.39, no dividend in them: equal
    assert performance["1D"]["net_performance"] == performance["WTD"]["net_performance"] == "-5.39"
    assert performance["1D"]["gross_performance"] == "-5.39"


def test_btcusd_bought_in_euros():
    # portfolio-calculator-btceur.spec.ts (test/import/ok-btceur.json): 1 BTCUSD bought for 39378.5 EUR on
    # 12 Dec 2021, i.e. 44558.42 USD with a 4.46 USD fee, in a USD portfolio. Folio keeps a trade in its own
    # currency and converts it at its day's rate: 1 EUR = 1.1315418312 USD (44558.42 / 39378.5 to the 10
    # places a rate is stored with) and the fee as the 3.941525 EUR it is at that rate.
    fx_rates_store(base="EUR", series={date(2021, 12, 12): {"USD": D("1.1315418312")}})
    deals = [Deal(date(2021, 12, 12), "BTCUSD", "BUY", "1", "39378.5", "3.941525", currency="EUR")]
    portfolio = portfolio_of(base="USD", symbol="BTCUSD", currency="USD", deals=deals, closes={
        date(2015, 1, 1): "314.25", date(2017, 12, 31): "14156.4", date(2018, 1, 1): "13657.2",
        date(2021, 12, 12): "50098.3", date(2022, 1, 14): "43099.7"})

    performance, chart = figures(portfolio, today=date(2022, 1, 14))

    whole = performance["MAX"]
    # theirs: value 43099.7, gross −1458.72, net −1463.18, fee 4.46, investment 44558.42
    assert (whole["value"], whole["gross_performance"], whole["net_performance"], whole["fees"]) == (
        "43099.70", "-1458.72", "-1463.18", "4.46")
    # their first day: 50098.3 (the day's close wins over the trade's own price)
    assert chart["2021-12-12"] == "50098.30"


def test_manual_buy_before_the_first_market_price():
    # portfolio-calculator-manual-buy-before-first-market-price.spec.ts: a private investment, 1 @ 100 on
    # 1 Jan 2021; the only market price is 3000 on 31 Jan 2022
    deals = [Deal(date(2021, 1, 1), "PRIVATE", "BUY", "1", "100")]
    portfolio = portfolio_of(base="USD", symbol="PRIVATE", currency="USD", deals=deals, provider="manual",
                             closes={date(2022, 1, 31): "3000"})

    performance, chart = figures(portfolio, today=date(2022, 1, 31))

    # theirs: 100 on 1 Jan 2021 and on 30 Jan 2022 (never a future price), 3000 and a net 2900 at the end
    assert (chart["2021-01-01"], chart["2022-01-30"], chart["2022-01-31"]) == ("100.00", "100.00", "3000.00")
    whole = performance["MAX"]
    assert (whole["gross_performance"], whole["net_performance"], whole["total_investment"]) == (
        "2900.00", "2900.00", "100.00")
    assert whole["time_weighted_return"] == "29.000000"  # their netPerformanceInPercentage: 29


def test_manual_buy_with_market_prices_between_chart_dates():
    # portfolio-calculator-manual-buy-with-market-price-between-chart-dates.spec.ts: 10 @ 50 on 4 Jan 2021;
    # market prices 80 on 14 Jun 2023 and 100 on 15 Jun 2023 (as the spec states them)
    deals = [Deal(date(2021, 1, 4), "PRIVATE", "BUY", "10", "50")]
    portfolio = portfolio_of(base="USD", symbol="PRIVATE", currency="USD", deals=deals, provider="manual",
                             closes={date(2023, 6, 14): "80", date(2023, 6, 15): "100"})

    performance, chart = figures(portfolio, today=date(2024, 1, 31))

    # theirs: 500 on 13 Jun 2023, 1000 from 16 Jun 2023 (the latest price carried, not the first), net 500,
    # and no performance on the last day
    assert (chart["2023-06-13"], chart["2023-06-16"], chart["2024-01-30"]) == ("500.00", "1000.00", "1000.00")
    assert (performance["MAX"]["gross_performance"], performance["MAX"]["net_performance"]) == ("500.00", "500.00")
    assert (performance["1D"]["net_performance"], performance["1D"]["time_weighted_return"]) == ("0.00", "0.000000")


def test_nvda_buy_then_a_ten_for_one_split_then_sell():
    # portfolio-calculator-nvda-buy-with-split-and-sell.spec.ts (test/import/ok/nvda-buy-with-split-and-sell
    # .json): 1 @ 1200 on 3 Jun 2024, a 10:1 split on 10 Jun, 10 sold @ 125 on 14 Jun; their market data has
    # no NVDA close. Ghostfolio adjusts the buy for the split (10 @ 120); Folio records the SPLIT and divides
    # the carried trade price from the split day on.
    deals = [Deal(date(2024, 6, 3), "NVDA", "BUY", "1", "1200"), Deal(date(2024, 6, 10), "NVDA", "SPLIT", "10"),
             Deal(date(2024, 6, 14), "NVDA", "SELL", "10", "125")]
    portfolio = portfolio_of(base="USD", symbol="NVDA", currency="USD", deals=deals, closes={})

    performance, chart = figures(portfolio, today=date(2024, 6, 14))

    whole = performance["MAX"]
    # theirs: gross = net = 10 × (125 − 120) = 50
    assert (whole["gross_performance"], whole["net_performance"], whole["value"]) == ("50.00", "50.00", "0.00")
    # continuous through the split: 1 × 1200, then 10 × 120
    assert (chart["2024-06-09"], chart["2024-06-10"], chart["2024-06-13"]) == ("1200.00", "1200.00", "1200.00")
    book = Book(symbols={"NVDA": "USD"}, deals=deals)
    assert matches_rate(whole["time_weighted_return"], book.twr(date(2024, 6, 2), date(2024, 6, 14)))


def test_provider_prices_are_not_adjusted_a_second_time_for_a_split():
    # portfolio-calculator-stock-split.spec.ts, "uses provider market data without adjusting it a second
    # time": 10 MSFT @ 674.44 on 9 Jul 2023, a 2:1 split on 10 Jul; their mock's closes are split-adjusted
    # (337.22 on 9 Jul, 331.83 on 10 Jul). Folio stores the price actually traded each day, so the 9 Jul
    # close is 674.44 here (their 337.22 × 2): the same market data, unadjusted.
    deals = [Deal(date(2023, 7, 9), "MSFT", "BUY", "10", "674.44"), Deal(date(2023, 7, 10), "MSFT", "SPLIT", "2")]
    portfolio = portfolio_of(base="USD", symbol="MSFT", currency="USD", deals=deals, closes={
        date(2023, 7, 9): "674.44", date(2023, 7, 10): "331.83"})

    performance, chart = figures(portfolio, today=date(2023, 7, 10))

    # theirs: 20 shares, investment 6744.4, value 20 × 331.83 = 6636.6
    whole = performance["MAX"]
    assert (whole["value"], whole["total_investment"], whole["net_performance"]) == ("6636.60", "6744.40", "-107.80")
    assert (chart["2023-07-09"], chart["2023-07-10"]) == ("6744.40", "6636.60")
