"""GET /api/portfolios/{id}/performance/: 202 until the chart generation has run, then the figures it cached."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from charts.cache import chart_data_delete, chart_data_get, chart_data_store, chart_progress_get
from charts.services import chart_data_generate
from portfolio.cache import portfolio_version_get
from prices.fx import fx_rates_store
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory

pytestmark = pytest.mark.django_db

CONTRACT_FIELDS = {"value", "total_investment", "gross_performance", "net_performance", "net_performance_percent",
                   "time_weighted_return", "money_weighted_return", "dividends", "fees"}


@pytest.fixture
def invested(portfolio):
    """10 shares bought four days ago at 100 + 1 fee, closing 100, 110 and (after a gap) 120 yesterday;
    a 2.50 dividend with 0.50 withheld two days ago."""
    instrument = InstrumentFactory(symbol="PERF")
    today = timezone.localdate()
    TransactionFactory(portfolio=portfolio, instrument=instrument, date=today - timedelta(days=4),
                       quantity=Decimal("10"), price=Decimal("100"), fee=Decimal("1"))
    TransactionFactory(portfolio=portfolio, instrument=instrument, type="DIVIDEND", date=today - timedelta(days=2),
                       quantity=Decimal("10"), price=Decimal("0.25"), fee=Decimal("0.5"))
    for days_ago, close in ((4, "100"), (3, "110"), (1, "120")):
        PriceFactory(instrument=instrument, date=today - timedelta(days=days_ago), close=Decimal(close))
    return portfolio


def test_pending_until_generated_then_the_figures(api, invested):
    url = f"/api/portfolios/{invested.pk}/performance/"

    before = api.get(url)

    assert before.status_code == 202
    assert before.json() == {"status": "pending", "progress_url": f"/api/chart-generator-progress/{invested.pk}/"}
    assert chart_progress_get(portfolio_id=invested.pk)["state"] == "PENDING"  # its generation is queued

    chart_data_generate(portfolio_id=invested.pk)
    response = api.get(url)

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= CONTRACT_FIELDS
    today = timezone.localdate()
    # value 1200; bought for 1000 + 1 fee; dividend 2.50 − 0.50 withheld: gross 1200 − 1000 + 2.50 = 202.50,
    # net 202.50 − 1.50 = 201; invested 1001 every day
    assert {name: body[name] for name in CONTRACT_FIELDS} == {
        "value": "1200.00", "total_investment": "1001.00", "gross_performance": "202.50",
        "net_performance": "201.00", "net_performance_percent": "0.200799",  # 201 / 1001
        # the buy's day 1000 / 1001 (its fee); then 1100 / 1000 · (1100 + 2) / 1100 · 1200 / 1100 · 1200 / 1200 − 1
        # = 1 322 400 / 1 101 100 − 1
        "time_weighted_return": "0.200981",
        "money_weighted_return": body["money_weighted_return"],
        "dividends": "2.50", "fees": "1.50",
    }
    assert float(body["money_weighted_return"]) > 1  # +20 % in four days, annualised
    assert (body["status"], body["range"], body["base_currency"], body["outdated"]) == ("ready", "MAX", "USD", False)
    assert (body["start"], body["end"]) == ((today - timedelta(days=4)).isoformat(), today.isoformat())
    assert (body["realized_gain"], body["unrealized_gain"], body["time_weighted_return_without_fx"]) == (
        "0.00", "199.00", "0.200981")
    bought = today - timedelta(days=4)
    assert body["investment_by_month"][0] == {"period": bought.strftime("%Y-%m"), "investment": "1001.00"}
    assert sum(Decimal(period["investment"]) for period in body["investment_by_year"]) == Decimal("1001.00")
    assert str(today.year) in body["years"]
    assert body["warnings"] == []
    assert body["generated_at"] == chart_data_get(portfolio_id=invested.pk)["generated_at"]


def test_one_generation_caches_chart_and_performance_together(invested):
    version = chart_data_generate(portfolio_id=invested.pk)

    data = chart_data_get(portfolio_id=invested.pk)
    assert data["version"] == version == portfolio_version_get(portfolio_id=invested.pk)
    assert data["ranges"]["MAX"][-1]["value"] == data["performance"]["ranges"]["MAX"]["value"] == "1200.00"
    assert chart_progress_get(portfolio_id=invested.pk)["state"] == "SUCCESS"


def test_a_range_and_the_one_day_figures(api, invested):
    chart_data_generate(portfolio_id=invested.pk)

    body = api.get(f"/api/portfolios/{invested.pk}/performance/?range=1d").json()

    # yesterday's 1200 carried to today: nothing moved
    assert (body["range"], body["value_start"], body["value"], body["net_performance"],
            body["time_weighted_return"]) == ("1D", "1200.00", "1200.00", "0.00", "0.000000")


def test_an_outdated_performance_is_served_marked(api, invested):
    chart_data_generate(portfolio_id=invested.pk)
    data = chart_data_get(portfolio_id=invested.pk)
    chart_data_delete(portfolio_id=invested.pk)
    chart_data_store(portfolio_id=invested.pk, version=-1, data={
        key: value for key, value in data.items() if key not in ("version", "generated_at")})
    # stored again under an older version: as after an edit, before its regeneration ran

    body = api.get(f"/api/portfolios/{invested.pk}/performance/").json()

    assert (body["status"], body["outdated"], body["value"]) == ("ready", True, "1200.00")
    assert chart_progress_get(portfolio_id=invested.pk)["state"] == "PENDING"  # a new one is queued


def test_chart_data_cached_before_performance_existed_counts_as_none(api, invested):
    chart_data_store(portfolio_id=invested.pk, version=portfolio_version_get(portfolio_id=invested.pk),
                     data={"ranges": {"MAX": []}})

    assert api.get(f"/api/portfolios/{invested.pk}/performance/").status_code == 202
    assert chart_progress_get(portfolio_id=invested.pk)["state"] == "PENDING"
    assert api.get(f"/api/dashboard-chart-data/{invested.pk}/?range=MAX").status_code == 200


def test_a_bad_range_is_a_400_naming_it(api, invested):
    chart_data_generate(portfolio_id=invested.pk)

    unknown = api.get(f"/api/portfolios/{invested.pk}/performance/?range=2W")
    quiet_year = api.get(f"/api/portfolios/{invested.pk}/performance/?range=1999")

    assert unknown.status_code == 400 and "range" in unknown.json()
    assert quiet_year.status_code == 400 and "No activity in 1999" in str(quiet_year.json()["range"])


def test_another_users_portfolio_is_a_404(api, foreign_portfolio):
    assert api.get(f"/api/portfolios/{foreign_portfolio.pk}/performance/").status_code == 404
    assert chart_progress_get(portfolio_id=foreign_portfolio.pk) is None  # nothing queued for it


def test_the_schema_documents_the_endpoint(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/portfolios/{portfolio_id}/performance/"]["get"]
    assert set(operation["responses"]) == {"200", "202"}
    assert set(schema["components"]["schemas"]["Performance"]["properties"]) >= CONTRACT_FIELDS


def test_the_same_figure_is_the_same_string_on_every_endpoint(api, portfolio):
    # given a sell realizing exactly 2.675, a dividend of exactly 0.125, a hand-priced holding valued at its
    # trade price (3 × 33.335 = 100.005), and a euro holding whose value needs a rate (1 EUR = 1.1 USD)
    today = timezone.localdate()
    day = lambda n: today - timedelta(days=n)  # noqa: E731
    aaa = InstrumentFactory(symbol="AAA", exchange_mic="")
    art = InstrumentFactory(symbol="ART", exchange_mic="", provider="manual")
    sap = InstrumentFactory(symbol="SAP", exchange_mic="", currency="EUR")
    fx_rates_store(base="EUR", series={day(10): {"USD": Decimal("1.1")}})
    for instrument, kind, days_ago, quantity, price, fee in (
            (aaa, "BUY", 5, "2", "10", "0"), (aaa, "SELL", 3, "1", "12.68", "0.005"),
            (aaa, "DIVIDEND", 2, "1", "0.125", "0"), (art, "BUY", 4, "3", "33.335", "0"),
            (sap, "BUY", 4, "1.5", "20.07", "0.333")):
        TransactionFactory(portfolio=portfolio, instrument=instrument, type=kind, date=day(days_ago),
                           quantity=Decimal(quantity), price=Decimal(price), fee=Decimal(fee),
                           currency=instrument.currency)
    PriceFactory(instrument=aaa, date=day(1), close=Decimal("11.115"))
    PriceFactory(instrument=sap, date=day(1), close=Decimal("21.115"))

    chart_data_generate(portfolio_id=portfolio.pk)
    initial = api.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()
    holdings = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()["holdings"]
    chart = api.get(f"/api/dashboard-chart-data/{portfolio.pk}/?range=1M").json()
    performance = api.get(f"/api/portfolios/{portfolio.pk}/performance/").json()

    # realized: 12.68 − 0.005 − 20 / 2 = 2.675 exactly, half-even to 2.68 — never 2.67
    assert initial["realized_gain"] == performance["realized_gain"] == "2.68"
    assert initial["dividends"] == performance["dividends"] == "0.12"  # 0.125, half-even
    # fees 0.005 + 0.333 × 1.1 = 0.3713
    assert initial["fees"] == performance["fees"] == "0.37"
    # 11.115 + 100.005 + 1.5 × 21.115 × 1.1 = 145.95975
    assert initial["total_value"] == performance["value"] == chart["series"][-1]["value"] == "145.96"
    assert chart["allocation"]["total"] == initial["total_value"]
    # cost 10 + 100.005 + (30.105 + 0.333) × 1.1 = 143.4868
    assert initial["total_cost"] == performance["total_investment"] == chart["series"][-1]["invested"] == "143.49"
    # 145.95975 − 143.4868 = 2.47295
    assert initial["unrealized_gain"] == performance["unrealized_gain"] == "2.47"
    art_row = next(row for row in holdings if row["symbol"] == "ART")
    assert (art_row["price"], art_row["market_value"], art_row["price_as_of"]) == (
        "33.335", "100.00", day(4).isoformat())
    by_symbol = {row["symbol"]: row["value"] for row in chart["allocation"]["by_instrument"]}
    assert {row["symbol"]: row["market_value"] for row in holdings} == by_symbol
