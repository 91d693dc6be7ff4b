"""Today's point follows the live quotes at read time, with no chart regeneration; a new completed day or a
corrected past close regenerates the chart. Real workers fetching from the loopback providers (the fixtures of
tests/portfolio/test_history.py), nothing posted by hand but the past close corrected as a provider would."""

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charts.cache import chart_data_get, chart_data_store
from charts.compute import chart_data_compute
from charts.performance import performance_compute
from charts.selectors import chart_inputs_load
from charts.sparklines import SPARKLINE_POINTS_MAX
from portfolio.models import Portfolio
from portfolio.ranges import months_before
from prices.models import Instrument, PriceHistory
from prices.refresh.jobs import prices_refresh_job_start
from prices.services import PricePoint, prices_upsert
from tests.charts.test_performance import close_to
from tests.portfolio import test_history as history
from tests.portfolio.test_history import (
    buy,
    current_chart,
    portfolio_of,
    sparkline_thinned,
    stock_price,
    wait_for,
    weekday_before,
)

pytestmark = pytest.mark.django_db(transaction=True)
providers, api = history.providers, history.api  # the workers, the stub providers and a user's client
LIVE_CLOSE = Decimal("321.50")


def in_todays_session(today: date) -> datetime:
    """A quote time whose New York session is today (UTC): at 00:00-05:00 UTC a quote made now belongs to
    the previous day's session, a completed day, and would rightly regenerate the history."""
    return datetime.combine(today, time(18, 0), tzinfo=UTC)


def live_quote_stored(providers, instrument: Instrument) -> None:
    """The 5-minute refresh, through the workers, brings the provider's quote of today: LIVE_CLOSE."""
    today = timezone.localdate()
    providers.market.price_of = lambda symbol, day: LIVE_CLOSE if day == today else stock_price(symbol, day)
    providers.market.quote_time = in_todays_session(today)
    prices_refresh_job_start(instrument_ids=[instrument.pk], force=True, lock_scope=None)
    wait_for("today's quote stored", lambda: PriceHistory.objects.filter(
        instrument=instrument, date=today, close=LIVE_CLOSE).exists())


def generation(portfolio_id: int) -> tuple[int, float]:
    """(history version, time) of the portfolio's cached chart: a regeneration moves the time."""
    data = chart_data_get(portfolio_id=portfolio_id)
    return data["version"], data["generated_at"]


def dashboard_total(api, portfolio_id: int) -> str:
    return api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()["total_value"]


@pytest.fixture
def held(providers, api) -> dict:
    """10 KO bought 20 days ago, its history fetched by the workers, the chart made."""
    portfolio_id = portfolio_of(api)
    traded = weekday_before(timezone.localdate() - timedelta(days=20))
    buy(api, portfolio_id, symbol="KO", date=traded, quantity="10", price="100")
    chart = wait_for("the first chart", current_chart(api, portfolio_id))
    ko = Instrument.objects.get(symbol="KO")
    assert PriceHistory.objects.filter(instrument=ko, date__lt=timezone.localdate()).count() >= 10
    sparklines = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?include=sparklines").json()["sparklines"]
    return {"portfolio_id": portfolio_id, "instrument": ko, "chart": chart, "traded": traded,
            "chart_sparklines": sparklines[str(ko.pk)]}


def test_an_intraday_quote_moves_the_live_point_and_figures_without_regenerating(providers, api, held):
    portfolio_id, today = held["portfolio_id"], timezone.localdate()
    before = generation(portfolio_id)
    assert held["chart"]["series"][-1]["value"] == dashboard_total(api, portfolio_id)
    performance_before = api.get(f"/api/portfolios/{portfolio_id}/performance/?range=MAX").json()

    # when the 5-minute refresh brings a new quote of today, through the workers
    live_quote_stored(providers, held["instrument"])

    # then the chart's last point, allocation and figures are at the new quote, and no chart was regenerated
    chart = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1M").json()
    assert chart["outdated"] is False
    assert dashboard_total(api, portfolio_id) == "3215.00"
    assert chart["series"][-1] == {"date": today.isoformat(), "value": "3215.00",
                                   "invested": held["chart"]["series"][-1]["invested"]}
    assert chart["series"][:-1] == [p for p in held["chart"]["series"] if p["date"] >= chart["series"][0]["date"]][:-1]
    assert chart["allocation"]["total"] == "3215.00"
    sparkline = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1M&include=sparklines").json()["sparklines"]
    assert list(sparkline) == [str(held["instrument"].pk)]
    assert sparkline[str(held["instrument"].pk)][-1] == {"date": today.isoformat(), "close": "321.5"}
    assert sparkline[str(held["instrument"].pk)][:-1] == [p for p in held["chart_sparklines"]
                                                          if p["date"] != today.isoformat()]
    assert chart["allocation"]["by_instrument"][0]["value"] == "3215.00"
    performance = api.get(f"/api/portfolios/{portfolio_id}/performance/?range=MAX").json()
    assert performance["value"] == "3215.00" and performance["outdated"] is False
    assert performance["gross_performance"] == "2215.00"  # bought for 1,000.00
    assert performance["unrealized_gain"] == "2215.00"
    # one buy, no other flow: the TWR runs from the money paid in (10 × 100) to today's value
    assert performance["time_weighted_return"] == f"{float(LIVE_CLOSE * 10 / 1000) - 1:.6f}"
    assert performance["time_weighted_return_without_fx"] == performance["time_weighted_return"]  # all in USD
    assert performance["value_start"] == performance_before["value_start"]
    # 1,000.00 paid on the first day (1 day after MAX's base day), 3,215.00 the value today: solved again
    days = (today - held["traded"]).days + 1
    rho = math.log(3215 / 1000) / ((days - 1) / 365)
    # annualised over ~20 days it is ~10^9: compared within the solver's precision, as every other rate is
    # (an exact string, 16 significant digits, matched or not by the date's luck)
    assert float(performance["money_weighted_return"]) == close_to(math.expm1(rho))
    # over the time the money was in, from the buy: the whole gain, 3215 / 1000 − 1
    assert float(performance["money_weighted_return_period"]) == close_to(math.expm1(rho * (days - 1) / 365))
    assert float(performance["money_weighted_return_period"]) == close_to(2.215)
    assert performance["money_weighted_return"] != performance_before["money_weighted_return"]
    one_day = api.get(f"/api/portfolios/{portfolio_id}/performance/?range=1D").json()
    yesterday_value = Decimal(one_day["value_start"])
    assert Decimal(one_day["gross_performance"]) == Decimal("3215.00") - yesterday_value
    assert one_day["time_weighted_return"] == f"{float(Decimal('3215.00') / yesterday_value) - 1:.6f}"
    assert generation(portfolio_id) == before
    # the stored chart is the history: today's point there is still valued at the last completed close
    stored_today = chart_data_get(portfolio_id=portfolio_id)["ranges"]["1M"][-1]
    assert stored_today["value"] != "3215.00"


def test_a_corrected_past_close_regenerates_the_chart(providers, api, held):
    portfolio_id, ko = held["portfolio_id"], held["instrument"]
    version, _ = generation(portfolio_id)
    yesterday = weekday_before(timezone.localdate() - timedelta(days=1))

    # when the provider corrects a completed session's close
    prices_upsert(instrument=ko, points=[PricePoint(date=yesterday, close=Decimal("250"))], source="yahoo")

    # then the history is regenerated with it
    chart = wait_for("the regenerated chart", current_chart(api, portfolio_id, chart_range="1M"))
    assert generation(portfolio_id)[0] == version + 1
    assert {p["date"]: p["value"] for p in chart["series"]}[yesterday.isoformat()] == "2500.00"
    assert chart["series"][-1]["value"] == dashboard_total(api, portfolio_id)


def test_a_close_rewritten_unchanged_regenerates_nothing(providers, api, held):
    portfolio_id, ko = held["portfolio_id"], held["instrument"]
    before = generation(portfolio_id)
    yesterday = weekday_before(timezone.localdate() - timedelta(days=1))
    stored = PriceHistory.objects.get(instrument=ko, date=yesterday)

    # (a refresh before the market opens re-sends the last session's close)
    prices_upsert(instrument=ko, points=[PricePoint(date=yesterday, close=stored.close,
                                                    adjusted_close=stored.adjusted_close)], source="yahoo")

    assert generation(portfolio_id) == before
    assert api.get(f"/api/dashboard-chart-data/{portfolio_id}/").json()["outdated"] is False
    assert PriceHistory.objects.get(instrument=ko, date=yesterday).last_updated > stored.last_updated


def test_a_new_day_regenerates_the_history(providers, api, held):
    # given the chart as it was stored yesterday (its today is yesterday)
    portfolio_id = held["portfolio_id"]
    stored = chart_data_get(portfolio_id=portfolio_id)
    version, made_at = stored.pop("version"), stored.pop("generated_at")
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    chart_data_store(portfolio_id=portfolio_id, version=version, data={**stored, "as_of": yesterday})

    # when it is read today, it is served as it was, outdated, and made again for today
    served = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1M").json()
    assert served["outdated"] is True
    chart = wait_for("today's chart", current_chart(api, portfolio_id, chart_range="1M"))
    again = chart_data_get(portfolio_id=portfolio_id)
    assert (again["version"], again["as_of"]) == (version, timezone.localdate().isoformat())
    assert again["generated_at"] > made_at
    assert chart["series"][-1]["value"] == dashboard_total(api, portfolio_id)


def test_a_portfolio_without_transactions_has_an_empty_chart_and_performance(providers, api):
    portfolio_id = portfolio_of(api)

    chart = wait_for("the empty chart", current_chart(api, portfolio_id, chart_range="1M"))

    assert chart["series"] == [] and chart["allocation"]["by_instrument"] == []
    performance = api.get(f"/api/portfolios/{portfolio_id}/performance/?range=MAX")
    assert performance.status_code == 200 and performance.json()["value"] == "0.00"


@pytest.mark.parametrize("base_currency", ["USD", "CHF"])
def test_the_live_figures_are_those_a_full_generation_with_todays_quotes_makes(providers, api, base_currency):
    # given a portfolio (in CHF: a USD stock at each day's rate) with two buys, a sell and today's quote live
    today = timezone.localdate()
    portfolio_id = portfolio_of(api, base_currency)
    first, second = (weekday_before(today - timedelta(days=n)) for n in (400, 40))
    buy(api, portfolio_id, symbol="KO", date=first, quantity="10", price="90", fee="1.5")
    buy(api, portfolio_id, symbol="KO", date=second, quantity="5", price="120")
    sell = {"type": "SELL", "symbol": "KO", "date": weekday_before(today - timedelta(days=10)).isoformat(),
            "quantity": "4", "price": "130", "fee": "2", "currency": "USD"}
    assert api.post(f"/api/portfolios/{portfolio_id}/transactions/", sell, format="json").status_code == 201
    wait_for("the chart", current_chart(api, portfolio_id))
    ko = Instrument.objects.get(symbol="KO")
    before = generation(portfolio_id)
    live_quote_stored(providers, ko)

    # then every figure served is the one a full generation that counts today's quote computes
    inputs = chart_inputs_load(portfolio=Portfolio.objects.get(pk=portfolio_id))
    full = performance_compute(inputs, today=today)
    for key in ("1D", "WTD", "MTD", "YTD", "1Y", "5Y", "MAX", str(today.year)):
        served = api.get(f"/api/portfolios/{portfolio_id}/performance/?range={key}").json()
        assert {name: served[name] for name in full["ranges"][key]} == full["ranges"][key], key
    chart = chart_data_compute(inputs, today=today)
    served = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1Y").json()
    assert served["series"] == chart["ranges"]["1Y"]
    assert served["allocation"] == chart["allocation"]
    assert generation(portfolio_id) == before


def line_of(closes) -> list[dict]:
    """A sparkline's points: (day, close) pairs, the close as stored, trailing zeros dropped."""
    return [{"date": day.isoformat(), "close": f"{close.normalize():f}"} for day, close in closes]


def test_two_holdings_of_one_symbol_each_have_their_own_sparkline_ending_at_its_own_latest_close(providers, api):
    # given KO twice in one portfolio: the user's own manual KO, priced by its owner (the trade, then the
    # closes they enter after it), and the shared KO the provider prices (its history fetched by the workers)
    today = timezone.localdate()
    portfolio_id = portfolio_of(api)
    traded = weekday_before(today - timedelta(days=20))
    buy(api, portfolio_id, symbol="KO", provider="manual", date=traded, quantity="3", price="40")
    buy(api, portfolio_id, symbol="KO", provider="yahoo", date=traded, quantity="10", price="100")
    manual = Instrument.objects.get(symbol="KO", owner=api.user)
    shared = Instrument.objects.get(symbol="KO", owner=None)
    entered = {weekday_before(today - timedelta(days=n)): Decimal(f"{40 + n}.25") for n in (10, 5, 2)}
    posted = api.post("/api/instruments/KO/prices/", [{"date": day.isoformat(), "close": str(close)}
                                                      for day, close in entered.items()], format="json")
    assert posted.status_code == 201 and posted.json()["written"] == 3
    wait_for("the chart of both", current_chart(api, portfolio_id))
    holdings = api.get(f"/api/dashboard-holdings-data/{portfolio_id}/").json()["holdings"]
    assert sorted((h["symbol"], h["instrument_id"]) for h in holdings) == sorted([("KO", manual.pk), ("KO", shared.pk)])

    # when the sparklines are read
    sparklines = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?include=sparklines").json()["sparklines"]

    # then each holding's line, found by its instrument id, is its own instrument's closes of the last 3 months
    # before today (the workers fetched them from there, however recent the trade), every n-th counted back from
    # the latest when there are more than SPARKLINE_POINTS_MAX
    # (once today's session has closed, the workers fetched today's close too: the line then ends on it)
    fetched = dict(PriceHistory.objects.filter(instrument=shared, date__lt=today, date__gte=months_before(today, 3))
                   .order_by("date").values_list("date", "close"))
    todays = list(PriceHistory.objects.filter(instrument=shared, date=today).values_list("date", "close"))
    assert len(fetched) > SPARKLINE_POINTS_MAX
    assert all(close == stock_price("KO", day) for day, close in [*fetched.items(), *todays])
    before_today = line_of(sparkline_thinned(list(fetched.items())))
    assert sparklines == {str(manual.pk): line_of(sorted(entered.items())),
                          str(shared.pk): before_today + line_of(todays)}

    # when today's closes arrive — the provider's quote of the shared KO, the owner's close of theirs — without
    # a regeneration
    before = generation(portfolio_id)
    live_quote_stored(providers, shared)
    posted = api.post("/api/instruments/KO/prices/", [{"date": today.isoformat(), "close": "47.5"}], format="json")
    assert posted.status_code == 201

    # then each line ends on its own instrument's close of today
    live = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?include=sparklines").json()
    assert live["outdated"] is False and generation(portfolio_id) == before
    today_of = {"date": today.isoformat()}
    assert live["sparklines"] == {str(manual.pk): [*sparklines[str(manual.pk)], {**today_of, "close": "47.5"}],
                                  str(shared.pk): [*before_today, {**today_of, "close": "321.5"}]}


def test_two_holdings_of_one_symbol_are_two_allocation_rows_in_one_order_whichever_path_made_them(providers, api):
    # given KO twice in one portfolio: the user's manual KO made first (the lower id) but bought later, and the
    # shared KO made second but bought first — the generation meets them by id, the dashboard's valuation by
    # their first trade — its history fetched by the workers
    today = timezone.localdate()
    portfolio_id = portfolio_of(api)
    buy(api, portfolio_id, symbol="KO", provider="manual", date=weekday_before(today - timedelta(days=10)),
        quantity="10", price="40")
    buy(api, portfolio_id, symbol="KO", provider="yahoo", date=weekday_before(today - timedelta(days=20)),
        quantity="10", price="100")
    manual = Instrument.objects.get(symbol="KO", owner=api.user)
    shared = Instrument.objects.get(symbol="KO", owner=None)
    assert manual.pk < shared.pk
    wait_for("the chart of both", current_chart(api, portfolio_id))
    # (today's, once today's session has closed: the workers fetch it with the history)
    last_close = PriceHistory.objects.filter(instrument=shared, date__lte=today).latest("date").close
    assert last_close != Decimal("40")

    # when the allocation is read (the live path: the dashboard's valuation)
    served = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1M").json()

    # then each KO is a row of its own, named by its instrument id (and its provider: what the page shows),
    # the larger first; and a generation made the same rows (a full one, meeting today's close as the live path
    # does when there is one: the cached chart holds the closes before today)
    shared_value = (10 * last_close).quantize(Decimal("0.01"))
    rows = sorted([(shared.pk, f"{shared_value:f}"), (manual.pk, "400.00")], key=lambda row: -Decimal(row[1]))
    provider = {manual.pk: "manual", shared.pk: "yahoo"}
    assert [(s["instrument_id"], s["symbol"], s["provider"], s["value"])
            for s in served["allocation"]["by_instrument"]] == [(pk, "KO", provider[pk], value) for pk, value in rows]
    full = chart_data_compute(chart_inputs_load(portfolio=Portfolio.objects.get(pk=portfolio_id)), today=today)
    assert served["allocation"] == full["allocation"]

    # when both are worth the same today: the provider's quote of the shared KO, the owner's close of theirs
    live_quote_stored(providers, shared)
    posted = api.post("/api/instruments/KO/prices/", [{"date": today.isoformat(), "close": str(LIVE_CLOSE)}],
                      format="json")
    assert posted.status_code == 201

    # then the tie is broken by the instrument id, on the live path as in a full generation with today's closes
    served = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1M").json()
    assert served["outdated"] is False
    assert [(s["instrument_id"], s["symbol"], s["value"], s["weight"])
            for s in served["allocation"]["by_instrument"]] == [(manual.pk, "KO", "3215.00", "0.5000"),
                                                               (shared.pk, "KO", "3215.00", "0.5000")]
    full = chart_data_compute(chart_inputs_load(portfolio=Portfolio.objects.get(pk=portfolio_id)), today=today)
    assert served["allocation"] == full["allocation"]


def test_a_position_first_valued_by_todays_close_is_money_in_as_a_full_generation_books_it(providers, api):
    # given 10 KO and a house received as a gift (no price, so left out of the value), the chart made
    today = timezone.localdate()
    portfolio_id = portfolio_of(api)
    buy(api, portfolio_id, symbol="KO", date=weekday_before(today - timedelta(days=40)), quantity="10", price="90")
    gift = {"type": "BUY", "symbol": "HOUSE", "provider": "manual", "date": (today - timedelta(days=30)).isoformat(),
            "quantity": "1", "price": "0", "gift": True, "currency": "USD", "fee": "0"}
    assert api.post(f"/api/portfolios/{portfolio_id}/transactions/", gift, format="json").status_code == 201
    wait_for("the chart", current_chart(api, portfolio_id))
    before = generation(portfolio_id)
    house = Instrument.objects.get(symbol="HOUSE")
    assert [w["code"] for w in api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1M").json()["warnings"]
            if w["instrument_id"] == house.pk] == ["no_price"]

    # when its owner enters its first price, today's (the chart is not made again: only today's closes moved)
    posted = api.post("/api/instruments/HOUSE/prices/", [{"date": today.isoformat(), "close": "500000"}],
                      format="json")
    assert posted.status_code == 201

    # then every figure served is the one a full generation counting today's close makes: the house's value is
    # money in today, not half a million of gain in a day
    inputs = chart_inputs_load(portfolio=Portfolio.objects.get(pk=portfolio_id))
    full = performance_compute(inputs, today=today)
    for key in ("1D", "WTD", "MTD", "YTD", "1Y", "MAX"):
        served = api.get(f"/api/portfolios/{portfolio_id}/performance/?range={key}").json()
        assert {name: served[name] for name in full["ranges"][key]} == full["ranges"][key], key
    assert Decimal(full["ranges"]["1D"]["net_performance"]) < 1000
    chart = chart_data_compute(inputs, today=today)
    served = api.get(f"/api/dashboard-chart-data/{portfolio_id}/?range=1M").json()
    assert served["series"] == chart["ranges"]["1M"] and served["warnings"] == chart["warnings"]
    assert not [w for w in served["warnings"] if w["instrument_id"] == house.pk]
    assert generation(portfolio_id) == before
