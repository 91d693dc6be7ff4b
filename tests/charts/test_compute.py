"""Chart series, ranges, sparklines and allocation of hand-computed portfolios, loaded from the database."""

import gc
import json
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import numpy as np
import pytest
from django.utils import timezone

from charts.cache import _ranges_parts
from charts.compute import (
    DAILY_POINTS_MAX,
    InstrumentInfo,
    _cents_texts,
    _inserted,
    _MergedPrices,
    _money,
    _near_half_cent,
    _StepRows,
    allocation_json,
    allocation_of,
    chart_data_compute,
    cyclic_gc_paused,
)
from charts.live import live_valuation_get
from charts.selectors import PriceRows, chart_inputs_load
from charts.sparklines import SPARKLINE_POINTS_MAX
from portfolio.dashboard import dashboard_data_compute
from portfolio.holdings import money_sum
from prices.fx import fx_rates_store
from prices.models import Instrument
from tests.charts.factories import FxRateFactory, closes_create
from tests.charts.oracle import Book, Deal, cents
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def chart(portfolio, *, today: date):
    return chart_data_compute(chart_inputs_load(portfolio=portfolio), today=today)


def daily(data, key: str = "MAX") -> dict[str, tuple[str, str]]:
    return {point["date"]: (point["value"], point["invested"]) for point in data["ranges"][key]}


def test_buy_then_the_price_moves(portfolio):
    # given 10 AAA bought at 100 with a 1 fee on Tue 2 Jan, closing 100, 105, 103.5
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("10"),
                       price=D("100"), fee=D("1"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 3): "105",
                                          date(2024, 1, 4): "103.5"})

    data = chart(portfolio, today=date(2024, 1, 4))

    assert data["ranges"]["MAX"] == [
        {"date": "2024-01-02", "value": "1000.00", "invested": "1001.00"},
        {"date": "2024-01-03", "value": "1050.00", "invested": "1001.00"},
        {"date": "2024-01-04", "value": "1035.00", "invested": "1001.00"},
    ]
    assert data["base_currency"] == "USD"
    assert data["first_date"] == "2024-01-02"
    assert data["as_of"] == "2024-01-04"
    assert data["warnings"] == []
    json.dumps(data)  # what is cached and served as is


def test_closes_carry_over_weekends_and_holidays(portfolio):
    # given a buy on Thu 11 Jan; Fri 12 closes 110; Sat, Sun and Mon 15 (Martin Luther King Day) have no close
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 11), quantity=D("10"),
                       price=D("100"))
    closes_create(instrument=aaa, closes={date(2024, 1, 11): "100", date(2024, 1, 12): "110",
                                          date(2024, 1, 16): "120"})

    series = daily(chart(portfolio, today=date(2024, 1, 17)))

    assert [series[f"2024-01-{d}"][0] for d in range(11, 18)] == [
        "1000.00", "1100.00", "1100.00", "1100.00", "1100.00", "1200.00", "1200.00",
    ]
    assert len(series) == 7  # every calendar day, up to today


def test_a_buy_on_a_saturday_is_valued_at_its_own_price_newer_than_fridays_close(portfolio):
    # given closes on Thu 4 and Fri 5 Jan, older than the first transaction (Sat 6, at 50)
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 6), quantity=D("4"), price=D("50"))
    closes_create(instrument=aaa, closes={date(2024, 1, 4): "49", date(2024, 1, 5): "51.25",
                                          date(2024, 1, 8): "52"})

    series = daily(chart(portfolio, today=date(2024, 1, 8)))

    # the trade is the latest observation until Monday's close
    assert series == {"2024-01-06": ("200.00", "200.00"), "2024-01-07": ("200.00", "200.00"),
                      "2024-01-08": ("208.00", "200.00")}


def test_an_instrument_without_a_close_yet_is_valued_at_its_trade_price(portfolio):
    aaa = InstrumentFactory(symbol="AAA")
    new = InstrumentFactory(symbol="NEWCO")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("1"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=new, date=date(2024, 1, 2), quantity=D("2"), price=D("7"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10"})
    closes_create(instrument=new, closes={date(2024, 1, 4): "8"})

    data = chart(portfolio, today=date(2024, 1, 4))

    assert daily(data) == {"2024-01-02": ("24.00", "24.00"), "2024-01-03": ("24.00", "24.00"),
                           "2024-01-04": ("26.00", "24.00")}
    assert data["warnings"] == []


def test_the_close_wins_its_day_and_the_days_last_trade_wins_over_earlier_ones(portfolio):
    # given two buys on 2 Jan without a close (at 10, then at 11) and a buy on 3 Jan at 13 with a close of 12
    aaa = InstrumentFactory(symbol="AAA", provider="manual")
    for day, price in ((date(2024, 1, 2), "10"), (date(2024, 1, 2), "11"), (date(2024, 1, 3), "13")):
        TransactionFactory(portfolio=portfolio, instrument=aaa, date=day, quantity=D("1"), price=D(price))
    closes_create(instrument=aaa, closes={date(2024, 1, 3): "12"})

    series = daily(chart(portfolio, today=date(2024, 1, 3)))

    assert series == {"2024-01-02": ("22.00", "21.00"), "2024-01-03": ("36.00", "34.00")}


def test_a_held_instrument_without_any_observation_is_left_out_and_reported(portfolio):
    # given shares transferred in at price 0 (a gift says nothing about the price) and no close
    new = InstrumentFactory(symbol="NEWCO")
    TransactionFactory(portfolio=portfolio, instrument=new, date=date(2024, 1, 2), quantity=D("2"), price=D("0"),
                       fee=D("1"))

    data = chart(portfolio, today=date(2024, 1, 3))

    # left out of the value, never valued at 0 (the value is the sum of what can be valued: nothing here)
    assert daily(data) == {"2024-01-02": ("0.00", "1.00"), "2024-01-03": ("0.00", "1.00")}
    assert [(w["code"], w["symbol"]) for w in data["warnings"]] == [("no_price", "NEWCO")]
    assert data["allocation"]["by_instrument"] == []


def test_a_trade_in_a_currency_without_a_rate_is_no_observation(portfolio):
    # given a USD-quoted instrument bought in EUR, with no EUR rate stored yet and no close
    coin = InstrumentFactory(symbol="COIN", provider="manual")
    TransactionFactory(portfolio=portfolio, instrument=coin, date=date(2024, 1, 2), quantity=D("2"), price=D("7"),
                       currency="EUR")

    data = chart(portfolio, today=date(2024, 1, 2))

    assert daily(data) == {"2024-01-02": ("0.00", "0.00")}
    assert {(w["code"], w["symbol"]) for w in data["warnings"]} == {("no_price", "COIN"),
                                                                    ("fx_missing_invested", "COIN")}


def test_a_hand_priced_portfolio_is_valued_every_day_by_its_trades(portfolio):
    # given two buys of a hand-priced instrument, then a sell, with a single stored close in between
    art = InstrumentFactory(symbol="ART", provider="manual", exchange_mic="")
    deals = [Deal(date(2024, 3, 1), "ART", "BUY", "3", "50", "2"), Deal(date(2024, 3, 5), "ART", "BUY", "1", "54"),
             Deal(date(2024, 3, 9), "ART", "SELL", "2", "49.5", "1")]
    for deal in deals:
        TransactionFactory(portfolio=portfolio, instrument=art, type=deal.kind, date=deal.day,
                           quantity=D(deal.quantity), price=D(deal.price), fee=D(deal.fee))
    closes_create(instrument=art, closes={date(2024, 3, 7): "52.25"})
    book = Book(symbols={"ART": "USD"}, closes={"ART": {date(2024, 3, 7): "52.25"}}, deals=deals)

    values = {day: value for day, (value, _) in daily(chart(portfolio, today=date(2024, 3, 12))).items()}

    assert values == {(date(2024, 3, 1) + timedelta(days=n)).isoformat(): cents(book.value(
        date(2024, 3, 1) + timedelta(days=n))) for n in range(12)}
    assert "0.00" not in values.values()


def test_todays_point_is_the_dashboards_total_to_the_cent(portfolio):
    # given a value of exactly 2.675 today (float64 would round it down: 2.67499999…)
    aaa = InstrumentFactory(symbol="AAA", exchange_mic="")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("1"), price=D("2"))
    closes_create(instrument=aaa, closes={date(2024, 1, 3): "2.675"})

    data = chart(portfolio, today=date(2024, 1, 3))
    dashboard = dashboard_data_compute(portfolio=portfolio, now=datetime(2024, 1, 3, 23, tzinfo=UTC))

    assert data["ranges"]["MAX"][-1] == {"date": "2024-01-03", "value": "2.68", "invested": "2.00"}
    assert dashboard["initial"]["total_value"] == data["allocation"]["total"] == "2.68"
    assert dashboard["initial"]["total_cost"] == "2.00"


def test_a_half_cent_day_of_the_value_line_is_rounded_from_its_exact_value(portfolio):
    # given one share each of AAA and BBB whose closes sum to a half cent on days that are no range's bound:
    # 778.2828 + 4566.1122 = 5344.395 exactly (half-even: 5344.40), where the doubles' sum is
    # 5344.3949999999995; and 918.4876 + 378.7574 = 1297.245 (half-even: 1297.24), 1297.2450000000001 in doubles
    aaa = InstrumentFactory(symbol="AAA", exchange_mic="")
    bbb = InstrumentFactory(symbol="BBB", exchange_mic="")
    for instrument in (aaa, bbb):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 2), quantity=D("1"),
                           price=D("100"))
    closes_create(instrument=aaa, closes={date(2024, 1, 3): "778.2828", date(2024, 1, 4): "918.4876"})
    closes_create(instrument=bbb, closes={date(2024, 1, 3): "4566.1122", date(2024, 1, 4): "378.7574"})

    series = daily(chart(portfolio, today=date(2024, 1, 5)))

    # each point is its exact value rounded half-even once, as every money figure is (docs/holdings.md)
    assert series["2024-01-03"] == ("5344.40", "200.00")
    assert series["2024-01-04"] == ("1297.24", "200.00")
    assert series["2024-01-05"] == ("1297.24", "200.00")  # today: the Decimal valuation already


def test_a_half_cent_day_is_exact_when_the_doubles_sum_is_off_by_several_roundings(portfolio):
    # given six holdings whose closes sum to 2301.015 exactly (half-even: 2301.02) on a day that is no range's
    # bound; summed as doubles they make 2301.0149999999994, two roundings (in cents) below the half cent
    closes = ["156.743", "301.0303", "295.0856", "611.2887", "645.872", "290.9954"]
    for k, close in enumerate(closes):
        instrument = InstrumentFactory(symbol=f"H{k}", exchange_mic="")
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 2), quantity=D("1"),
                           price=D("100"))
        closes_create(instrument=instrument, closes={date(2024, 1, 3): close, date(2024, 1, 4): "100"})

    series = daily(chart(portfolio, today=date(2024, 1, 5)))

    assert series["2024-01-03"] == ("2301.02", "600.00")


def test_a_partial_sell_removes_the_proportional_cost(portfolio):
    # given 10 @ 100 + 1 fee, then 30 @ 120 + 3 fee (cost 4604 for 40), then 10 sold @ 130 with a 2 fee
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("10"),
                       price=D("100"), fee=D("1"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 3), quantity=D("30"),
                       price=D("120"), fee=D("3"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SELL", date=date(2024, 1, 4), quantity=D("10"),
                       price=D("130"), fee=D("2"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 3): "120",
                                          date(2024, 1, 4): "130"})

    series = daily(chart(portfolio, today=date(2024, 1, 4)))

    # the sell removes 4604 × 10/40 = 1151: 3453 is left; the fee and the gain are not invested money
    assert series == {"2024-01-02": ("1000.00", "1001.00"), "2024-01-03": ("4800.00", "4604.00"),
                      "2024-01-04": ("3900.00", "3453.00")}


def test_selling_everything_leaves_nothing_invested(portfolio):
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("3"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SELL", date=date(2024, 1, 3), quantity=D("3"),
                       price=D("12"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10", date(2024, 1, 3): "12"})

    data = chart(portfolio, today=date(2024, 1, 4))

    assert daily(data) == {"2024-01-02": ("30.00", "30.00"), "2024-01-03": ("0.00", "0.00"),
                           "2024-01-04": ("0.00", "0.00")}
    assert data["sparklines"] == {}
    assert data["allocation"]["total"] == "0.00"


def test_same_day_transactions_show_the_end_of_day_state(portfolio):
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("10"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SELL", date=date(2024, 1, 2), quantity=D("4"),
                       price=D("11"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "11"})

    assert daily(chart(portfolio, today=date(2024, 1, 2))) == {"2024-01-02": ("66.00", "60.00")}


def test_a_split_multiplies_the_quantity_and_keeps_the_value_continuous(portfolio):
    # given 10 bought at 200; a 2-for-1 split on 3 Jan, when the close halves from 200 to 100
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("10"),
                       price=D("200"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SPLIT", date=date(2024, 1, 3), quantity=D("2"),
                       price=D("0"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "200", date(2024, 1, 3): "100",
                                          date(2024, 1, 4): "101"})

    series = daily(chart(portfolio, today=date(2024, 1, 4)))

    assert series == {"2024-01-02": ("2000.00", "2000.00"), "2024-01-03": ("2000.00", "2000.00"),
                      "2024-01-04": ("2020.00", "2000.00")}


def test_a_split_on_a_day_without_a_close_divides_the_close_carried_into_it(portfolio):
    # given a 2-for-1 split recorded on Saturday 6 Jan: Friday's close (200) is carried into the weekend,
    # halved from the split on; Monday's close is 101
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 5), quantity=D("10"),
                       price=D("199"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SPLIT", date=date(2024, 1, 6), quantity=D("2"),
                       price=D("0"))
    closes_create(instrument=aaa, closes={date(2024, 1, 5): "200", date(2024, 1, 8): "101"})

    series = daily(chart(portfolio, today=date(2024, 1, 8)))

    assert {day: value for day, (value, _) in series.items()} == {
        "2024-01-05": "2000.00", "2024-01-06": "2000.00", "2024-01-07": "2000.00", "2024-01-08": "2020.00"}


def test_a_euro_position_in_a_dollar_portfolio_follows_the_rate(portfolio):
    # given 1 EUR = 1.10 USD on 2 Jan and 1.20 on 3 Jan, no rate on 4 Jan (carried forward)
    sap = InstrumentFactory(symbol="SAP", currency="EUR", exchange_mic="XETR")
    fx_rates_store(base="EUR", series={date(2024, 1, 2): {"USD": D("1.10")}, date(2024, 1, 3): {"USD": D("1.20")}})
    TransactionFactory(portfolio=portfolio, instrument=sap, date=date(2024, 1, 2), quantity=D("10"),
                       price=D("100"), fee=D("2"), currency="EUR")
    TransactionFactory(portfolio=portfolio, instrument=sap, date=date(2024, 1, 3), quantity=D("5"),
                       price=D("100"), currency="EUR")
    closes_create(instrument=sap, closes={date(2024, 1, 2): "100", date(2024, 1, 3): "100",
                                          date(2024, 1, 4): "110"})

    data = chart(portfolio, today=date(2024, 1, 4))

    # invested: each buy at its own date's rate — 1002 × 1.10 = 1102.20, then + 500 × 1.20 = 600
    assert daily(data) == {"2024-01-02": ("1100.00", "1102.20"), "2024-01-03": ("1800.00", "1702.20"),
                           "2024-01-04": ("1980.00", "1702.20")}
    assert data["warnings"] == []


def test_rates_stored_the_other_way_round_and_pence_are_converted(portfolio):
    # given 1 USD = 0.8 GBP (so 1 GBP = 1.25 USD) and a London listing quoted in pence
    vod = InstrumentFactory(symbol="VOD.L", currency="GBp", exchange_mic="XLON")
    fx_rates_store(base="USD", series={date(2024, 1, 2): {"GBP": D("0.8")}})
    TransactionFactory(portfolio=portfolio, instrument=vod, date=date(2024, 1, 2), quantity=D("100"),
                       price=D("0.7"), currency="GBP")
    closes_create(instrument=vod, closes={date(2024, 1, 2): "72"})

    data = chart(portfolio, today=date(2024, 1, 2))

    # value: 100 × 72 p = 72 GBP = 90 USD; invested: 70 GBP = 87.50 USD
    assert daily(data) == {"2024-01-02": ("90.00", "87.50")}
    assert data["allocation"]["by_currency"] == [{"currency": "GBP", "value": "90.00", "weight": "1.0000"}]
    assert data["sparklines"] == {str(vod.pk): [{"date": "2024-01-02", "close": "72"}]}  # in its own currency


def test_a_missing_rate_leaves_the_instrument_out_and_warns(portfolio):
    # given a USD holding, and a EUR one whose first rate comes a day after its purchase
    aaa = InstrumentFactory(symbol="AAA")
    sap = InstrumentFactory(symbol="SAP", currency="EUR")
    FxRateFactory(base="EUR", quote="USD", date=date(2024, 1, 3), rate=D("1.25"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("1"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=sap, date=date(2024, 1, 2), quantity=D("2"),
                       price=D("40"), currency="EUR")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10"})
    closes_create(instrument=sap, closes={date(2024, 1, 2): "40", date(2024, 1, 3): "44"})

    data = chart(portfolio, today=date(2024, 1, 4))

    # never converted at 1: SAP is simply absent from 2 Jan's value, and its cost (bought without a rate) from
    # every day's invested
    assert daily(data) == {"2024-01-02": ("10.00", "10.00"), "2024-01-03": ("120.00", "10.00"),
                           "2024-01-04": ("120.00", "10.00")}
    assert [(w["code"], w["symbol"], w["currency"], w["start"], w["end"], w["days"]) for w in data["warnings"]] == [
        ("fx_missing_value", "SAP", "EUR", "2024-01-02", "2024-01-02", 1),
        ("fx_missing_invested", "SAP", "EUR", "2024-01-02", "2024-01-04", 3),
    ]
    assert all("SAP" in w["message"] and "EUR/USD" in w["message"] for w in data["warnings"])


def test_a_currency_without_any_rate_never_counts_but_the_rest_does(portfolio):
    aaa = InstrumentFactory(symbol="AAA")
    toyota = InstrumentFactory(symbol="7203.T", currency="JPY", exchange_mic="XTKS")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("1"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=toyota, date=date(2024, 1, 2), quantity=D("100"),
                       price=D("2500"), currency="JPY")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10"})
    closes_create(instrument=toyota, closes={date(2024, 1, 2): "2600"})

    data = chart(portfolio, today=date(2024, 1, 2))

    assert daily(data) == {"2024-01-02": ("10.00", "10.00")}
    assert {w["code"] for w in data["warnings"]} == {"fx_missing_value", "fx_missing_invested"}
    assert [s["symbol"] for s in data["allocation"]["by_instrument"]] == ["AAA"]


def test_ranges_start_where_they_should(portfolio):
    # given a portfolio started on 2 Jan 2023, viewed on Fri 15 Mar 2024
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2023, 1, 2), quantity=D("1"), price=D("1"))
    closes_create(instrument=aaa, closes={date(2023, 1, 2): "1"})

    ranges = chart(portfolio, today=date(2024, 3, 15))["ranges"]

    firsts = {key: points[0]["date"] for key, points in ranges.items()}
    assert firsts == {"1M": "2024-02-15", "3M": "2023-12-15", "6M": "2023-09-15", "YTD": "2024-01-01",
                      "1Y": "2023-03-15", "5Y": "2023-01-02", "MAX": "2023-01-02"}
    assert all(points[-1]["date"] == "2024-03-15" for points in ranges.values())
    # a year and shorter: every calendar day (2024 is a leap year)
    assert [len(ranges[key]) for key in ("1M", "3M", "6M", "YTD", "1Y")] == [30, 92, 183, 75, 367]
    # MAX spans 439 days, more than DAILY_POINTS_MAX: the first day, every Friday before today, today
    max_days = [date.fromisoformat(p["date"]) for p in ranges["MAX"]]
    assert DAILY_POINTS_MAX < 439
    assert max_days[0] == date(2023, 1, 2)
    assert max_days[1] == date(2023, 1, 6)
    assert {day.weekday() for day in max_days[1:]} == {4}  # Fridays (15 Mar 2024 is one)
    assert {(b - a).days for a, b in zip(max_days[1:], max_days[2:], strict=False)} == {7}
    assert len(max_days) == 64  # 62 Fridays from 6 Jan 2023 to 8 Mar 2024, then 2 Jan and 15 Mar
    assert ranges["5Y"] == ranges["MAX"]


def test_weekly_points_stay_on_the_fridays_from_one_day_to_the_next(portfolio):
    # given a portfolio started on Mon 2 Jan 2023 whose value moves every day, viewed Tue 19 to Mon 25 Mar 2024
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2023, 1, 2), quantity=D("1"), price=D("1"))
    start = date(2023, 1, 2)
    closes_create(instrument=aaa, closes={start + timedelta(days=n): f"{100 + n}" for n in range(460)})

    seen = {}
    for today in (date(2024, 3, 19) + timedelta(days=n) for n in range(7)):
        points = chart(portfolio, today=today)["ranges"]["MAX"]
        seen[today] = [(p["date"], p["value"]) for p in points]

    # the first day, then the Fridays before today (not every 7th day back from today), then today
    tuesday = seen[date(2024, 3, 19)]
    assert [d for d, _ in tuesday[:3]] == ["2023-01-02", "2023-01-06", "2023-01-13"]
    assert [d for d, _ in tuesday[-3:]] == ["2024-03-08", "2024-03-15", "2024-03-19"]
    assert tuesday[-2] == ("2024-03-15", f"{100 + (date(2024, 3, 15) - start).days}.00")
    assert len(tuesday) == 65  # 63 Fridays from 6 Jan 2023 to 15 Mar 2024, 2 Jan 2023 and 19 Mar 2024
    # each next day only moves the last point (today), or appends one after a Friday; nothing else changes
    for today, points in seen.items():
        if today == date(2024, 3, 19):
            continue
        before = seen[today - timedelta(days=1)]
        kept = before if (today - timedelta(days=1)).weekday() == 4 else before[:-1]
        assert points == [*kept, (today.isoformat(), f"{100 + (today - start).days}.00")]
    assert [d for d, _ in seen[date(2024, 3, 25)][-4:]] == ["2024-03-08", "2024-03-15", "2024-03-22",
                                                              "2024-03-25"]


def test_beyond_ten_years_every_other_weeks_friday_stays_put(portfolio):
    # given a portfolio started on Tue 1 Jan 2013: MAX spans more than THINNED_POINTS_MAX weeks in 2024
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2013, 1, 1), quantity=D("1"), price=D("1"))
    closes_create(instrument=aaa, closes={date(2013, 1, 1): "1"})

    wednesday = [date.fromisoformat(p["date"]) for p in chart(portfolio, today=date(2024, 3, 20))["ranges"]["MAX"]]
    thursday = [date.fromisoformat(p["date"]) for p in chart(portfolio, today=date(2024, 3, 21))["ranges"]["MAX"]]

    assert wednesday[0] == date(2013, 1, 1) and wednesday[-1] == date(2024, 3, 20)
    assert {day.weekday() for day in wednesday[1:-1]} == {4}
    assert {(b - a).days for a, b in zip(wednesday[1:-1], wednesday[2:-1], strict=False)} == {14}
    # weeks counted from a fixed Monday, not back from today: the next day keeps them
    assert thursday == [*wednesday[:-1], date(2024, 3, 21)]
    assert len(wednesday) <= 532


def test_month_ranges_clamp_to_the_end_of_shorter_months(portfolio):
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2023, 6, 1), quantity=D("1"), price=D("1"))

    ranges = chart(portfolio, today=date(2024, 5, 31))["ranges"]

    assert ranges["1M"][0]["date"] == "2024-04-30"
    assert ranges["3M"][0]["date"] == "2024-02-29"
    assert ranges["1Y"][0]["date"] == "2023-06-01"  # the range reaches before the first transaction
    assert len(ranges["1Y"]) == len(ranges["MAX"]) == 366


def test_sparklines_cover_the_last_months_of_held_instruments_within_the_point_bound(portfolio):
    # given daily closes for 200 days on one held instrument, and a sold-out one
    aaa = InstrumentFactory(symbol="AAA")
    old = InstrumentFactory(symbol="OLD")
    today = date(2024, 6, 30)
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=today - timedelta(days=199), quantity=D("1"),
                       price=D("1"))
    TransactionFactory(portfolio=portfolio, instrument=old, date=today - timedelta(days=199), quantity=D("1"),
                       price=D("1"))
    TransactionFactory(portfolio=portfolio, instrument=old, type="SELL", date=today - timedelta(days=9),
                       quantity=D("1"), price=D("1"))
    closes_create(instrument=aaa, closes={today - timedelta(days=n): f"{100 + n}.5" for n in range(200)})
    closes_create(instrument=old, closes={today: "3"})

    sparklines = chart(portfolio, today=today)["sparklines"]

    assert list(sparklines) == [str(aaa.pk)]
    line = sparklines[str(aaa.pk)]
    assert 45 <= len(line) <= SPARKLINE_POINTS_MAX
    assert line[-1] == {"date": "2024-06-30", "close": "100.5"}  # the latest close is always there
    assert line[0]["date"] >= "2024-03-30"
    assert [p["date"] for p in line] == sorted(p["date"] for p in line)


def test_allocation_by_instrument_asset_class_and_currency(portfolio):
    # given three equal positions (so weights are thirds) and a fourth twice as big: 100, 100, 100, 200
    a = InstrumentFactory(symbol="AAA", asset_class="stock")
    b = InstrumentFactory(symbol="BBB", asset_class="etf")
    c = InstrumentFactory(symbol="CCC", asset_class="etf", currency="EUR")
    d = InstrumentFactory(symbol="DDD", asset_class="stock")
    FxRateFactory(base="EUR", quote="USD", date=date(2024, 1, 2), rate=D("1.25"))
    for instrument, quantity in ((a, "10"), (b, "10"), (c, "8"), (d, "20")):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 2), quantity=D(quantity),
                           price=D("10"), currency=instrument.currency)
        closes_create(instrument=instrument, closes={date(2024, 1, 2): "10"})

    allocation = chart(portfolio, today=date(2024, 1, 3))["allocation"]
    # (the generation, which only stores it, has it written as JSON at once: the same text; and so are the ranges'
    # points, each written once)
    written = chart_data_compute(chart_inputs_load(portfolio=portfolio), today=date(2024, 1, 3), as_text=True)
    assert written["allocation"].json_text() == json.dumps(allocation)
    assert _ranges_parts(written["ranges"]) == {f"range:{key}": json.dumps(points)
                                                for key, points in written["ranges"].items()}

    assert allocation["total"] == "500.00"
    assert [(s["symbol"], s["value"], s["weight"]) for s in allocation["by_instrument"]] == [
        ("DDD", "200.00", "0.4000"), ("AAA", "100.00", "0.2000"), ("BBB", "100.00", "0.2000"),
        ("CCC", "100.00", "0.2000"),
    ]
    assert allocation["by_asset_class"] == [
        {"asset_class": "stock", "value": "300.00", "weight": "0.6000"},
        {"asset_class": "etf", "value": "200.00", "weight": "0.4000"},
    ]
    assert allocation["by_currency"] == [
        {"currency": "USD", "value": "400.00", "weight": "0.8000"},
        {"currency": "EUR", "value": "100.00", "weight": "0.2000"},
    ]


def test_two_instruments_of_one_symbol_are_told_apart_in_the_allocation_and_the_warnings(portfolio):
    # given the user's own manual KO (made first: the lower id) and the shared KO, worth 300 and 500; and a
    # euro-quoted SAP of each kind, transferred in (price 0) before the first EUR rate: both have their cost
    # left out of invested, the shared one (a close of its own) is left out of 2 January's value, and the
    # user's (no observation at all) has no price
    manual = InstrumentFactory(symbol="KO", owner=portfolio.owner, provider="manual", name="KO")
    shared = InstrumentFactory(symbol="KO", name="KO")
    for instrument, quantity in ((manual, "30"), (shared, "50")):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 2), quantity=D(quantity),
                           price=D("10"))
    closes_create(instrument=shared, closes={date(2024, 1, 2): "10"})
    mine_eur = InstrumentFactory(symbol="SAP", owner=portfolio.owner, provider="manual", currency="EUR")
    shared_eur = InstrumentFactory(symbol="SAP", currency="EUR")
    FxRateFactory(base="EUR", quote="USD", date=date(2024, 1, 3), rate=D("1.25"))
    for instrument in (mine_eur, shared_eur):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 2), quantity=D("1"),
                           price=D("0"), currency="EUR")
    closes_create(instrument=shared_eur, closes={date(2024, 1, 2): "40"})

    data = chart(portfolio, today=date(2024, 1, 3))

    # then each is a row (and a warning) of its own, named by its instrument id
    assert [(s["instrument_id"], s["symbol"], s["provider"], s["value"])
            for s in data["allocation"]["by_instrument"]] == [
        (shared.pk, "KO", "simulated", "500.00"), (manual.pk, "KO", "manual", "300.00"),
        (shared_eur.pk, "SAP", "simulated", "50.00")]
    assert [(w["code"], w["instrument_id"], w["symbol"]) for w in data["warnings"]] == [
        ("fx_missing_value", shared_eur.pk, "SAP"),
        ("fx_missing_invested", mine_eur.pk, "SAP"), ("fx_missing_invested", shared_eur.pk, "SAP"),
        ("no_price", mine_eur.pk, "SAP")]
    # and each message names the one it is about as the holdings table labels it: symbol and provider
    assert [w["message"] for w in data["warnings"]] == [
        "No EUR/USD rate: SAP · simulated is left out of the value on 1 day(s) from 2024-01-02 to 2024-01-02.",
        "No EUR/USD rate: SAP · manual has its cost left out of invested on 2 day(s) from 2024-01-02 to 2024-01-03.",
        "No EUR/USD rate: SAP · simulated has its cost left out of invested on 2 day(s) from 2024-01-02 to "
        "2024-01-03.",
        "SAP · manual has no price yet: it is left out of the value."]


def test_a_warning_names_the_symbol_alone_unless_another_instrument_shares_it(portfolio):
    # given a manual KO with no price at all, held beside the shared PEP; then beside a shared KO too
    manual = InstrumentFactory(symbol="KO", owner=portfolio.owner, provider="manual", name="My KO")
    pep = InstrumentFactory(symbol="PEP")
    for instrument in (manual, pep):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 2), quantity=D("1"),
                           price=D("0"))

    def messages() -> list[str]:
        return [w["message"] for w in chart(portfolio, today=date(2024, 1, 3))["warnings"]]

    assert messages() == ["KO has no price yet: it is left out of the value.",
                          "PEP has no price yet: it is left out of the value."]
    shared = InstrumentFactory(symbol="KO", name="Coca-Cola")
    TransactionFactory(portfolio=portfolio, instrument=shared, date=date(2024, 1, 2), quantity=D("1"),
                       price=D("0"))
    assert messages() == ["KO · manual has no price yet: it is left out of the value.",
                          "PEP has no price yet: it is left out of the value.",
                          "KO · simulated has no price yet: it is left out of the value."]
    # a shared KO staff keep by hand is manual too: the names tell them apart, else the ids
    Instrument.objects.filter(pk=shared.pk).update(provider="manual")
    assert messages() == ["KO · My KO has no price yet: it is left out of the value.",
                          "PEP has no price yet: it is left out of the value.",
                          "KO · Coca-Cola has no price yet: it is left out of the value."]
    Instrument.objects.filter(pk=shared.pk).update(name="My KO")
    assert messages() == [f"KO · #{manual.pk} has no price yet: it is left out of the value.",
                          "PEP has no price yet: it is left out of the value.",
                          f"KO · #{shared.pk} has no price yet: it is left out of the value."]


def test_an_allocation_tie_is_ordered_by_symbol_then_instrument_id_on_both_paths(portfolio):
    # given two KO worth the same today, the one with the higher id bought first: the generation meets them by
    # id, the dashboard's valuation (the live path) by their first trade
    today = timezone.localdate()
    manual = InstrumentFactory(symbol="KO", owner=portfolio.owner, provider="manual", name="KO")
    shared = InstrumentFactory(symbol="KO", name="KO")
    other = InstrumentFactory(symbol="AAA")
    for instrument, day in ((shared, today - timedelta(days=3)), (manual, today - timedelta(days=2)),
                            (other, today - timedelta(days=1))):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=day, quantity=D("4"), price=D("25"))
        closes_create(instrument=instrument, closes={today: "25"})

    generated = chart(portfolio, today=today)["allocation"]
    live = json.loads(live_valuation_get(portfolio=portfolio).allocation)

    assert [(s["symbol"], s["instrument_id"], s["value"], s["weight"]) for s in generated["by_instrument"]] == [
        ("AAA", other.pk, "100.00", "0.3334"), ("KO", manual.pk, "100.00", "0.3333"),
        ("KO", shared.pk, "100.00", "0.3333")]
    assert live == generated


def test_the_allocation_is_written_as_json_dumps_writes_it():
    # given an allocation of instruments whose strings need escaping (quote, backslash, a control character, the
    # line separators, non-ASCII), of two asset classes and three currencies (pence counted as pounds)
    odd = 'Quote " back \\ tab \t sep \u2028 par \u2029 ünï € 日本'
    valued = [(InstrumentInfo(7, "ODD", odd, "stock", "GBp", "manual"), D("1234.5678")),
              (InstrumentInfo(3, "É", "Plain", "etf", "USD", "yahoo"), D("0.004")),
              (InstrumentInfo(9, "KO", "KO", "stock", "GBP", "stooq"), D("99.995")),
              (InstrumentInfo(4, "EU", "Euro", "etf", "EUR", "yahoo"), D("1234.5678"))]
    total = money_sum(v for _, v in valued)

    # when it is written for the live point, then it is json.dumps's text of the allocation the generation makes
    # of them (ASCII, escaped), and so is an empty one's
    written = allocation_json(valued=valued, total=total)
    assert written == json.dumps(allocation_of(valued=valued, total=total))
    assert "\\u65e5" in written and "\\u2028" in written
    # (a tie: EU before ODD, by symbol; the largest remainder's ten-thousandth to the first)
    assert '"value": "1234.57", "weight": "0.4806"}, {"instrument_id": 7,' in written
    assert allocation_json(valued=[], total=D("0")) == json.dumps(allocation_of(valued=[], total=D("0")))


def test_allocation_weights_add_up_to_exactly_one(portfolio):
    for symbol in ("AAA", "BBB", "CCC"):
        instrument = InstrumentFactory(symbol=symbol)
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, 2), quantity=D("1"),
                           price=D("1"))
        closes_create(instrument=instrument, closes={date(2024, 1, 2): "7"})

    allocation = chart(portfolio, today=date(2024, 1, 2))["allocation"]

    weights = [D(s["weight"]) for s in allocation["by_instrument"]]
    assert sum(weights) == D("1")
    assert sorted(weights) == [D("0.3333"), D("0.3333"), D("0.3334")]
    assert sum(D(s["weight"]) for s in allocation["by_asset_class"]) == D("1")
    assert sum(D(s["weight"]) for s in allocation["by_currency"]) == D("1")


def test_an_empty_portfolio_has_empty_chart_data():
    data = chart(PortfolioFactory(base_currency="EUR"), today=date(2024, 1, 2))

    assert data["ranges"] == {key: [] for key in ("1M", "3M", "6M", "YTD", "1Y", "5Y", "MAX")}
    assert data["first_date"] is None
    assert data["allocation"]["total"] == "0.00"
    assert data["base_currency"] == "EUR"


def test_dividends_and_fees_are_not_invested_money(portfolio):
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("2"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="DIVIDEND", date=date(2024, 1, 3), quantity=D("2"),
                       price=D("0.5"), fee=D("0.1"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="FEE", date=date(2024, 1, 3), quantity=D("0"),
                       fee=D("3"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10"})

    assert daily(chart(portfolio, today=date(2024, 1, 3))) == {"2024-01-02": ("20.00", "20.00"),
                                                               "2024-01-03": ("20.00", "20.00")}


def test_transactions_after_today_are_not_counted_yet(portfolio):
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 2), quantity=D("1"), price=D("10"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 1, 9), quantity=D("5"), price=D("10"))
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "10"})

    data = chart(portfolio, today=date(2024, 1, 3))

    assert daily(data) == {"2024-01-02": ("10.00", "10.00"), "2024-01-03": ("10.00", "10.00")}
    assert data["allocation"]["total"] == "10.00"
    assert chart(portfolio, today=date(2024, 1, 1))["ranges"]["MAX"] == []


def test_collector_pauses_overlapping_in_two_threads_switch_it_back_on_at_the_last_end():
    # Two generations side by side (a thread-pool worker): the first to end must not switch the collector
    # back on under the other, and the last must not leave it off.
    assert gc.isenabled()
    entered, first_done = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def later() -> None:
        with cyclic_gc_paused():
            entered.set()
            first_done.wait(5)
            seen["after the first ended"] = gc.isenabled()

    other = threading.Thread(target=later)
    with cyclic_gc_paused():
        other.start()
        entered.wait(5)
        with cyclic_gc_paused():  # nested in the same thread
            pass
        seen["after a nested one ended"] = gc.isenabled()
    first_done.set()
    other.join(5)
    assert seen == {"after a nested one ended": False, "after the first ended": False}
    assert gc.isenabled()


def test_step_look_ups_of_several_days_at_once_find_each_days_own_row():
    # Given rows sorted by (column, day): column 0 with one before the first day (counted as day -1), column 1
    # with none, column 2 with one on day 0 and one past the last day (never found)
    rows = _StepRows(columns=np.array([0, 0, 0, 2, 2]), days=np.array([-3, 4, 9, 0, 12]), n_days=10)
    days = [0, 3, 4, 8, 9]
    # When every column is looked up on several days in one search
    found = rows.last_on_each(columns=np.arange(3), days=days)
    # Then each day has, per column, the index of its last row dated on or before it (-1 for none)
    assert found.tolist() == [[0, -1, 3], [0, -1, 3], [1, -1, 3], [1, -1, 3], [2, -1, 3]]
    assert rows.last_on(columns=np.array([0, 2]), day=8).tolist() == [1, 3]


def _random_rows(generator: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(columns, days) of 400 rows of 40 columns over 60 days (some before the first day or after the last),
    sorted by column then day."""
    columns = np.sort(generator.integers(0, 40, 400))
    days = generator.integers(-5, 65, 400)
    order = np.lexsort((days, columns))
    return columns[order], days[order]


def test_step_look_ups_of_several_days_agree_with_a_scan_of_the_rows():
    # Given random rows of 40 columns over 60 days (some before the first day or after the last)
    generator = np.random.default_rng(15)
    columns, days = _random_rows(generator)
    rows = _StepRows(columns=columns, days=days, n_days=60)
    wanted_days = sorted({int(day) for day in generator.integers(0, 60, 12)})
    # When they are looked up for every column on those days at once
    found = rows.last_on_each(columns=np.arange(40), days=wanted_days)
    # Then each answer is the last row of that column dated on or before the day (before day 0 counting as
    # day -1), as a scan of every row finds it
    for k, day in enumerate(wanted_days):
        for column in range(40):
            candidates = [i for i in range(len(columns)) if columns[i] == column and max(days[i], -1) <= day]
            assert found[k, column] == (candidates[-1] if candidates else -1), (day, column)


def test_the_merged_rows_prices_made_a_block_at_a_time_are_those_of_one_array_of_them_all():
    # Given 1,000 closes and 60 rows inserted among them (trades and split days: several at one place, some
    # before the first close and after the last), as np.insert places them
    generator = np.random.default_rng(4)
    micros = generator.integers(1, 10**12, 1_000)
    closes = PriceRows.of(np.zeros(1_000, dtype="i8"), np.arange(1_000, dtype="i4"), micros)
    at = np.sort(np.concatenate([generator.integers(0, 1_001, 56), [0, 0, 1_000, 1_000]]))
    extra = generator.random(60) * 100
    whole = np.insert(closes.closes, at, extra)
    prices = _MergedPrices(closes=closes, at=at, extra=extra)
    # When the grid asks for any block of the merged rows, they are the same floats, bit for bit
    bounds = [0, *sorted(generator.integers(0, len(whole) + 1, 30).tolist()), len(whole)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        assert prices.between(start, stop).tobytes() == whole[start:stop].tobytes(), (start, stop)
    assert prices.between(0, len(whole)).tobytes() == whole.tobytes()


def test_the_closes_keys_are_four_bytes_when_they_fit_and_look_ups_find_the_same_rows():
    # Given closes of 40 columns over 60 days (some before the first day or after the last), as runs
    generator = np.random.default_rng(21)
    columns, days = _random_rows(generator)
    origin = 20_000
    runs = np.bincount(columns, minlength=40)
    # When their keys are made from the runs (as the chart's closes are) and from the columns (int64)
    compact = _StepRows.of_runs(runs=runs, dates=(days + origin).astype("i4"), origin=origin, n_days=60)
    wide = _StepRows(columns=columns, days=days, n_days=60)
    # Then the closes' keys take 4 bytes each, and every look-up finds the same rows
    assert (compact.keys.dtype, wide.keys.dtype) == (np.dtype("i4"), np.dtype("i8"))
    assert compact.keys.tolist() == wide.keys.tolist()
    wanted = sorted({int(day) for day in generator.integers(0, 60, 12)})
    assert (compact.last_on_each(columns=np.arange(40), days=wanted).tolist()
            == wide.last_on_each(columns=np.arange(40), days=wanted).tolist())
    values = generator.random(400)
    for lo, hi in ((0, 16), (16, 40)):
        grid, first = compact.fill(lo=lo, hi=hi, values_between=lambda a, b: values[a:b], none=np.nan)
        grid_wide, first_wide = wide.fill(lo=lo, hi=hi, values_between=lambda a, b: values[a:b], none=np.nan)
        assert grid.tobytes() == grid_wide.tobytes() and first.tolist() == first_wide.tolist()
    # (keys past int32, 600,000 columns of 4,000 days, stay int64)
    assert _StepRows.of_runs(runs=np.zeros(600_000, dtype="i8"), dates=np.empty(0, "i4"), origin=origin,
                             n_days=4_000).keys.dtype == np.dtype("i8")


def test_rows_inserted_by_runs_are_those_np_insert_places():
    # Given arrays large enough to be joined by runs (the closes' keys, a block's prices) and small ones (left to
    # np.insert): values at one position (a cash's trades, no close of its own), at several (the first and past
    # the last among them), one value for every position, values of a wider type than the array's
    generator = np.random.default_rng(8)
    keys = np.arange(100_000, dtype="i4") * 3
    prices = generator.random(50_000)
    cases = [
        (keys, np.full(900, 30_000), np.arange(900, dtype="i8")),
        (keys, np.sort(np.concatenate([[0, 0, 100_000], generator.integers(0, 100_001, 40)])), np.arange(43)),
        (prices, np.sort(generator.integers(0, 50_001, 20)), np.nan),
        (prices, np.array([7, 7, 7]), generator.random(3)),
        (prices, np.array([], dtype="i8"), np.array([])),
        (prices[:1_000], np.sort(generator.integers(0, 1_001, 30)), 0.0),
    ]
    for array, at, values in cases:
        # When they are inserted
        made = _inserted(array, at=at, values=values)
        # Then the array is the one np.insert makes, type and bytes
        expected = np.insert(array, at, values)
        assert made.dtype == expected.dtype and made.tobytes() == expected.tobytes(), (len(array), at[:5])
    # (and a new array, never the one given)
    assert not np.shares_memory(_inserted(prices, at=np.array([], dtype="i8"), values=np.array([])), prices)


def _scanned(columns: np.ndarray, days: np.ndarray, values: np.ndarray, *, n_columns: int, n_days: int,
             none: float) -> tuple[np.ndarray, np.ndarray]:
    """_StepRows.fill by a scan: each (column, day) the value of its last row dated on or before it (before
    day 0 counting as day 0, after the last day ignored), `none` before its first; each column's first day with
    a row (n_days for none)."""
    grid = np.full((n_columns, n_days), none)
    first = np.full(n_columns, n_days)
    for column, day, value in zip(columns.tolist(), days.tolist(), values.tolist(), strict=True):
        if day < n_days:
            grid[column, max(day, 0):] = value
            first[column] = min(first[column], max(day, 0))
    return grid, first


@pytest.mark.parametrize("before_first", ["the last one alone", "several"])
def test_a_block_filled_from_its_rows_is_the_forward_fill_of_a_scan(before_first):
    # Given 30 columns of rows over 50 days: columns with no row, with a first row after day 0 (their `none`
    # before it), rows of one day; before the first day either each column's last row only (as the closes are
    # loaded: only first rows are moved to day 0) or several of a column; past the last day none or some
    generator = np.random.default_rng(30)
    n_columns, n_days = 30, 50
    for beyond in (False, True):
        columns = np.sort(generator.integers(0, n_columns - 4, 300))
        days = generator.integers(1 if before_first == "the last one alone" else -3, n_days + (5 if beyond else 0),
                                  300)
        if before_first == "the last one alone":
            seeded = np.unique(columns)[::2]
            columns, days = np.concatenate([columns, seeded]), np.concatenate([days, np.full(len(seeded), -4)])
        order = np.lexsort((days, columns))
        columns, days = columns[order], days[order]
        values = generator.random(len(columns))
        rows = _StepRows(columns=columns, days=days, n_days=n_days)
        expected, expected_first = _scanned(columns, days, values, n_columns=n_columns, n_days=n_days, none=np.nan)
        for lo, hi in ((0, 7), (7, 30)):
            # When a block is filled
            grid, first = rows.fill(lo=lo, hi=hi, values_between=lambda a, b, v=values: v[a:b], none=np.nan)
            # Then it is the scan's, bit for bit, and so are its columns' first days
            assert grid.tobytes() == expected[lo:hi].tobytes(), (beyond, lo)
            assert first.tolist() == expected_first[lo:hi].tolist()


def test_a_point_not_near_a_half_cent_is_written_in_cents_as_its_shortest_decimal_form_rounds():
    """charts.compute._cents_texts (float64 rounding) against _money (the point's shortest decimal form, rounded
    half-even in Decimal) on every point _near_half_cent lets it write: every magnitude from a tenth of a cent to
    10^13, and around whole and half cents (a hair off either side), negative ones too."""
    rng = np.random.default_rng(15)
    spread = 10.0 ** rng.uniform(-3, 13, 40_000)
    cents = np.round(spread, 2)
    halves = cents + 0.005
    values = np.concatenate([spread, cents, halves, np.nextafter(halves, 0), np.nextafter(halves, np.inf),
                             np.nextafter(cents, 0), -spread, -halves, [0.0, -0.0, 0.005, 2.675, 1e15]])
    far = values[~_near_half_cent(values, n_columns=1)]
    assert len(far) > len(values) // 3  # (the half cents and their neighbours are near one, by design)
    assert _cents_texts(far) == [_money(v) for v in far.tolist()]
    # the other points are valued exactly instead (charts.compute.chart_data_compute); one that is not finite is
    # written as _money writes it
    assert _cents_texts(np.array([np.nan])) == [_money(float("nan"))]
