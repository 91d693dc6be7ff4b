"""The live figures of a chart whose positions come into the value today (entries: charts.live.LivePoint.entered)
against a full generation counting today's quotes, served figure for figure; and the money-weighted return of a
period over the days the money was at work."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from charts.compute import chart_data_compute
from charts.performance import performance_compute
from charts.selectors import chart_inputs_load
from charts.services import chart_data_generate
from portfolio.models import Portfolio
from portfolio.ranges import PERFORMANCE_RANGES
from prices.fx import fx_rates_store
from prices.models import Provider
from tests.charts.factories import closes_create
from tests.factories import InstrumentFactory, TransactionFactory, closes_upsert

pytestmark = pytest.mark.django_db


def tx(portfolio, instrument, day, quantity, price, kind="BUY", currency=None):
    TransactionFactory(portfolio=portfolio, instrument=instrument, date=day, quantity=D(quantity), price=D(price),
                       fee=D("0"), type=kind, currency=currency or instrument.currency)


def daily(instrument, start, stop, close):
    closes_create(instrument=instrument, closes={start + timedelta(days=k): close
                                                 for k in range((stop - start).days)})


def aaa_held(portfolio, today: date):
    """10 AAA bought 40 days ago at 100, closing at 100 every day since: the holding every case starts from."""
    aaa = InstrumentFactory(symbol="AAA")
    tx(portfolio, aaa, today - timedelta(days=40), "10", "100")
    daily(aaa, today - timedelta(days=40), today, "100")
    return aaa


def differences(api, portfolio, keys=PERFORMANCE_RANGES):
    """Per range, the figures served that differ from a full generation counting today's quotes."""
    today = timezone.localdate()
    inputs = chart_inputs_load(portfolio=Portfolio.objects.get(pk=portfolio.pk))
    full = performance_compute(inputs, today=today)
    found = {}
    for key in keys:
        served = api.get(f"/api/portfolios/{portfolio.pk}/performance/?range={key}").json()
        assert served["outdated"] is False
        wrong = {name: (served[name], expected) for name, expected in full["ranges"][key].items()
                 if served[name] != expected}
        if wrong:
            found[key] = wrong
    chart = chart_data_compute(inputs, today=today)
    served = api.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M").json()
    if served["warnings"] != chart["warnings"]:
        found["warnings"] = (served["warnings"], chart["warnings"])
    if served["series"] != chart["ranges"]["1M"]:
        found["series"] = (served["series"][-1], chart["ranges"]["1M"][-1])
    return found


def test_a_gift_received_today_and_first_priced_today(api, portfolio, user):
    # given 10 AAA held for 40 days; a house received today (price 0), the chart made
    today = timezone.localdate()
    aaa_held(portfolio, today)
    house = InstrumentFactory(symbol="HOUSE", provider=Provider.MANUAL, owner=user)
    tx(portfolio, house, today, "1", "0")
    chart_data_generate(portfolio_id=portfolio.pk)
    # when its owner enters its first price, today's
    closes_upsert(house, {today: "500000"}, source="manual")
    # then every figure served is the full generation's
    assert differences(api, portfolio) == {}


def test_an_entry_valued_today_by_a_trade_then_by_todays_close(api, portfolio, user):
    # given 10 AAA held for 40 days; 10 shares of a private company received 20 days ago (no price); today 2 of
    # them sold at 100 (the trade prices them: the chart made again values the 8 left at 100)
    today = timezone.localdate()
    aaa_held(portfolio, today)
    priv = InstrumentFactory(symbol="PRIV", provider=Provider.MANUAL, owner=user)
    tx(portfolio, priv, today - timedelta(days=20), "10", "0")
    tx(portfolio, priv, today, "2", "100", kind="SELL")
    chart_data_generate(portfolio_id=portfolio.pk)
    # when its owner enters today's close, 120
    closes_upsert(priv, {today: "120"}, source="manual")
    # then every figure served is the full generation's
    assert differences(api, portfolio) == {}


def test_a_rate_arriving_today_for_a_position_without_one_then_todays_close(api, portfolio):
    # given 10 AAA (USD) and 5 EEE (EUR) held for 10 days, no EUR rate before today's
    today = timezone.localdate()
    aaa = InstrumentFactory(symbol="AAA")
    eee = InstrumentFactory(symbol="EEE", currency="EUR")
    tx(portfolio, aaa, today - timedelta(days=10), "10", "100")
    tx(portfolio, eee, today - timedelta(days=10), "5", "100")
    daily(aaa, today - timedelta(days=10), today, "100")
    daily(eee, today - timedelta(days=10), today, "100")
    # when today's EUR rate arrives (the chart is made again with it) and then EEE's close of today
    fx_rates_store(base="EUR", series={today: {"USD": D("1.1")}})
    chart_data_generate(portfolio_id=portfolio.pk)
    closes_upsert(eee, {today: "120"})
    # then every figure served is the full generation's
    assert differences(api, portfolio) == {}


def test_the_money_weighted_return_of_the_period_when_the_entry_is_the_whole_value(api, portfolio, user):
    # given AAA bought 40 days ago at 100 and all sold 30 days ago at 110; a house received 20 days ago
    today = timezone.localdate()
    aaa = InstrumentFactory(symbol="AAA")
    house = InstrumentFactory(symbol="HOUSE", provider=Provider.MANUAL, owner=user)
    tx(portfolio, aaa, today - timedelta(days=40), "10", "100")
    tx(portfolio, aaa, today - timedelta(days=30), "10", "110", kind="SELL")
    closes_create(instrument=aaa, closes={today - timedelta(days=40): "100", today - timedelta(days=30): "110"})
    tx(portfolio, house, today - timedelta(days=20), "1", "0")
    chart_data_generate(portfolio_id=portfolio.pk)
    # when its owner enters its first price, today's
    closes_upsert(house, {today: "500000"}, source="manual")
    # then every figure served is the full generation's
    assert differences(api, portfolio, keys=["MAX"]) == {}


def test_two_round_trips_of_ten_percent(portfolio):
    # given +10 % earned twice, ten days each, everything sold in between (idle for 4 months)
    aaa = InstrumentFactory(symbol="AAA")
    tx(portfolio, aaa, date(2024, 1, 2), "10", "100")
    tx(portfolio, aaa, date(2024, 1, 12), "10", "110", kind="SELL")
    tx(portfolio, aaa, date(2024, 6, 3), "10", "100")
    tx(portfolio, aaa, date(2024, 6, 13), "10", "110", kind="SELL")
    closes_create(instrument=aaa, closes={date(2024, 1, 2): "100", date(2024, 1, 12): "110",
                                          date(2024, 6, 3): "100", date(2024, 6, 13): "110"})
    whole = performance_compute(chart_inputs_load(portfolio=portfolio), today=date(2024, 6, 13))["ranges"]["MAX"]
    # then the money-weighted return over the 20 days the money was in is 1.1² − 1, as the TWR
    assert (whole["time_weighted_return"], whole["money_weighted_return_period"]) == ("0.210000", "0.210000")


def test_partially_valued_today(api, portfolio, user):
    today = timezone.localdate()
    aaa = aaa_held(portfolio, today)
    house = InstrumentFactory(symbol="HOUSE", provider=Provider.MANUAL, owner=user)
    boat = InstrumentFactory(symbol="BOAT", provider=Provider.MANUAL, owner=user)
    tx(portfolio, house, today - timedelta(days=20), "1", "0")
    tx(portfolio, boat, today - timedelta(days=20), "1", "0")
    chart_data_generate(portfolio_id=portfolio.pk)
    closes_upsert(house, {today: "5000"}, source="manual")
    closes_upsert(aaa, {today: "105"})
    assert differences(api, portfolio) == {}


def test_first_priced_today_and_all_sold_today(api, portfolio, user):
    today = timezone.localdate()
    aaa_held(portfolio, today)
    house = InstrumentFactory(symbol="HOUSE", provider=Provider.MANUAL, owner=user)
    tx(portfolio, house, today - timedelta(days=20), "1", "0")
    tx(portfolio, house, today, "1", "0", kind="SELL")
    chart_data_generate(portfolio_id=portfolio.pk)
    closes_upsert(house, {today: "5000"}, source="manual")
    assert differences(api, portfolio) == {}


def test_an_entry_with_a_buy_today_and_todays_closes(api, portfolio, user):
    # given a gift received 20 days ago (no price), AAA held, and more AAA bought today
    today = timezone.localdate()
    aaa = aaa_held(portfolio, today)
    house = InstrumentFactory(symbol="HOUSE", provider=Provider.MANUAL, owner=user)
    tx(portfolio, house, today - timedelta(days=20), "1", "0")
    tx(portfolio, aaa, today, "3", "101")
    chart_data_generate(portfolio_id=portfolio.pk)
    # when the house's first price and AAA's close of today arrive
    closes_upsert(house, {today: "5000"}, source="manual")
    closes_upsert(aaa, {today: "102"})
    # then every figure served is the full generation's, the money-weighted returns to their last digit
    assert differences(api, portfolio) == {}
