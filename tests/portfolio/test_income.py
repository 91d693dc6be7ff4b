"""Income through the API, with real workers fetching the FX rates of each payment's date from a loopback
Frankfurter: dividends by month and year, trailing twelve months and yield on cost, in the base currency."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portfolio.exposure import portfolio_exposure_get
from portfolio.income import portfolio_income_get
from portfolio.models import Portfolio
from portfolio.services import TransactionInput, transaction_create
from prices.models import FxRate
from tests.factories import InstrumentFactory, PortfolioFactory
from tests.portfolio.test_history import (  # noqa: F401 (fixtures)
    api,
    buy,
    portfolio_of,
    providers,
    usd_per_chf,
    wait_for,
    weekday_before,
)

pytestmark = pytest.mark.django_db(transaction=True)
CENT = Decimal("0.01")


def pay(client: APIClient, portfolio_id: int, symbol: str, day, quantity: str, per_share: str, withheld: str) -> None:
    body = {"symbol": symbol, "type": "DIVIDEND", "date": day.isoformat(), "quantity": quantity,
            "price": per_share, "fee": withheld, "currency": "USD"}
    response = client.post(f"/api/portfolios/{portfolio_id}/transactions/", body, format="json")
    assert response.status_code == 201, response.json()


def chf(usd: Decimal, day) -> Decimal:
    return usd / usd_per_chf(day)


def test_dividends_by_month_year_ttm_and_yield_on_cost_at_each_payments_rate(providers, api):  # noqa: F811
    today = timezone.localdate()
    portfolio_id = portfolio_of(api, "CHF")
    bought = weekday_before(today - timedelta(days=500))
    old, recent, latest = (weekday_before(today - timedelta(days=d)) for d in (420, 200, 20))
    buy(api, portfolio_id, symbol="AAPL", date=bought, quantity="10", price="100")
    buy(api, portfolio_id, symbol="KO", date=bought, quantity="20", price="50")
    pay(api, portfolio_id, "AAPL", old, "10", "0.50", "0.75")
    pay(api, portfolio_id, "AAPL", recent, "10", "0.60", "0.90")
    pay(api, portfolio_id, "KO", latest, "20", "0.40", "1.20")
    # the workers fetch USD/CHF from the first trade on
    wait_for("the rates of each payment's date", lambda: all(
        FxRate.objects.filter(date=day).exists() for day in (bought, old, recent, latest)))

    body = api.get(f"/api/portfolios/{portfolio_id}/income/").json()

    gross = {day: chf(amount, day) for day, amount in
             ((old, Decimal("5.00")), (recent, Decimal("6.00")), (latest, Decimal("8.00")))}
    withheld = {old: chf(Decimal("0.75"), old), recent: chf(Decimal("0.90"), recent),
                latest: chf(Decimal("1.20"), latest)}
    money = lambda amount: str(amount.quantize(CENT))  # noqa: E731
    assert body["base_currency"] == "CHF" and body["fx_missing"] == 0
    assert body["total"] == {"gross": money(sum(gross.values())), "withheld": money(sum(withheld.values())),
                             "net": money(sum(gross.values()) - sum(withheld.values())), "payments": 3}
    assert (body["ttm"]["gross"], body["ttm"]["payments"]) == (money(gross[recent] + gross[latest]), 2)
    months = {row["period"]: row for row in body["by_month"]}
    assert months[f"{old:%Y-%m}"]["gross"] == money(gross[old])
    assert months[f"{latest:%Y-%m}"]["net"] == money(gross[latest] - withheld[latest])
    assert body["by_month"][0]["period"] == f"{old:%Y-%m}" and body["by_month"][-1]["period"] == f"{today:%Y-%m}"
    assert sum(row["payments"] for row in body["by_month"]) == 3  # months without payments are there, at 0
    per_year: dict[str, Decimal] = {}
    for day, amount in gross.items():
        per_year[str(day.year)] = per_year.get(str(day.year), Decimal(0)) + amount
    assert {row["period"]: row["gross"] for row in body["by_year"] if row["payments"]} == {
        year: money(amount) for year, amount in per_year.items()}
    assert body["by_year"][-1]["period"] == str(today.year)
    by_symbol = {row["symbol"]: row for row in body["holdings"]}
    cost_aapl, cost_ko = chf(Decimal("1000"), bought), chf(Decimal("1000"), bought)
    assert by_symbol["AAPL"]["total"]["gross"] == money(gross[old] + gross[recent])
    assert by_symbol["AAPL"]["ttm"]["gross"] == money(gross[recent])
    assert by_symbol["AAPL"]["cost_basis"] == money(cost_aapl)
    assert Decimal(by_symbol["AAPL"]["yield_on_cost"]) == (gross[recent] / cost_aapl).quantize(Decimal("0.000001"))
    assert Decimal(by_symbol["KO"]["yield_on_cost"]) == (gross[latest] / cost_ko).quantize(Decimal("0.000001"))
    assert Decimal(body["yield_on_cost"]) == ((gross[recent] + gross[latest]) / (cost_aapl + cost_ko)).quantize(
        Decimal("0.000001"))
    assert [row["symbol"] for row in body["holdings"]] == ["KO", "AAPL"]  # largest trailing income first


def test_no_income_yet_and_other_users_portfolios(api, other_user):  # noqa: F811
    portfolio_id = portfolio_of(api, "USD")
    body = api.get(f"/api/portfolios/{portfolio_id}/income/").json()
    assert (body["total"]["gross"], body["by_month"], body["holdings"], body["yield_on_cost"]) == ("0.00", [], [], None)
    foreign = PortfolioFactory(owner=other_user)
    assert api.get(f"/api/portfolios/{foreign.pk}/income/").status_code == 404
    assert APIClient().get(f"/api/portfolios/{portfolio_id}/income/").status_code in (401, 403)


def test_the_schema_has_the_income_endpoint(api):  # noqa: F811
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/portfolios/{portfolio_id}/income/" in schema["paths"]
    assert set(schema["components"]["schemas"]["PortfolioIncome"]["properties"]) >= {
        "total", "ttm", "yield_on_cost", "by_month", "by_year", "holdings"}


@pytest.mark.django_db
def test_income_and_allocation_are_read_from_the_cache_until_the_portfolio_changes(
        django_assert_num_queries, django_capture_on_commit_callbacks):
    today = timezone.localdate()

    def add(kind: str, days_ago: int, quantity: str, price: str) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            transaction_create(portfolio=portfolio, data=TransactionInput(
                symbol="KO", type=kind, date=today - timedelta(days=days_ago), quantity=Decimal(quantity),
                price=Decimal(price), fee=Decimal("0"), currency="USD"))

    portfolio = PortfolioFactory(base_currency="USD")
    add("BUY", 30, "10", "60")
    add("DIVIDEND", 3, "10", "0.5")
    portfolio = Portfolio.objects.get(pk=portfolio.pk)
    first = portfolio_income_get(portfolio=portfolio)
    allocation = portfolio_exposure_get(portfolio=portfolio)
    with django_assert_num_queries(0):  # a poll, a reload: one Redis read each
        assert portfolio_income_get(portfolio=portfolio) == first
        assert portfolio_exposure_get(portfolio=portfolio) == allocation

    add("DIVIDEND", 2, "10", "0.25")
    portfolio = Portfolio.objects.get(pk=portfolio.pk)  # its new data version
    assert (first["ttm"]["gross"], portfolio_income_get(portfolio=portfolio)["ttm"]["gross"]) == ("5.00", "7.50")


def test_the_trailing_twelve_months_are_the_1y_ranges_across_a_29_february():
    # given a dividend paid on 16 June 2023, read on 15 June 2024 (a year with a 29 February between)
    portfolio = PortfolioFactory(base_currency="USD")
    for kind, day, quantity, price in (("BUY", date(2023, 1, 3), "10", "60"), ("DIVIDEND", date(2023, 6, 16), "10",
                                                                                "0.5")):
        transaction_create(portfolio=portfolio, data=TransactionInput(
            symbol="KO", type=kind, date=day, quantity=Decimal(quantity), price=Decimal(price), fee=Decimal("0"),
            currency="USD"))

    income = portfolio_income_get(portfolio=Portfolio.objects.get(pk=portfolio.pk), today=date(2024, 6, 15))

    # then it is in the trailing year, as in the 1Y performance range (base day 15 June 2023), not 365 days back
    assert (income["ttm"]["start"], income["ttm"]["gross"]) == (date(2023, 6, 16), "5.00")


def _tx(portfolio, symbol, kind, day, quantity, price, fee="0", currency="USD"):
    transaction_create(portfolio=portfolio, data=TransactionInput(
        symbol=symbol, type=kind, date=day, quantity=Decimal(quantity), price=Decimal(price), fee=Decimal(fee),
        currency=currency))


def test_income_yield_on_cost_leaves_out_the_income_of_a_holding_whose_cost_is_unknown():
    # given a EUR portfolio holding SAP (cost 1000 EUR) and KO, bought in USD before the first stored USD rate
    # (its cost unknown until the workers fetch it), each paying a dividend last month, when rates are known
    today = timezone.localdate()
    for days in range(200):
        FxRate.objects.create(base="EUR", quote="USD", date=today - timedelta(days=days), rate=Decimal("1.25"))
    portfolio = PortfolioFactory(base_currency="EUR")
    InstrumentFactory(symbol="KO")
    InstrumentFactory(symbol="SAP", currency="EUR")
    _tx(portfolio, "KO", "BUY", today - timedelta(days=300), "10", "50")
    _tx(portfolio, "SAP", "BUY", today - timedelta(days=300), "10", "100", currency="EUR")
    _tx(portfolio, "KO", "DIVIDEND", today - timedelta(days=30), "10", "1")
    _tx(portfolio, "SAP", "DIVIDEND", today - timedelta(days=30), "10", "2", currency="EUR")

    income = portfolio_income_get(portfolio=Portfolio.objects.get(pk=portfolio.pk))

    # then the total yield is SAP's 20 over SAP's 1000 (cost_basis leaves KO out): not KO's 8 EUR added on top
    assert income["cost_basis"] == "1000.00"
    assert income["yield_on_cost"] == "0.020000"  # observed 0.028000: 28 EUR of income over 1000 EUR of cost
