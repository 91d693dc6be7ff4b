"""Accounts and cash through the API, with real workers fetching the history from the loopback providers
(no close is posted by hand): deposits and withdrawals are the external flows of the time-weighted and
money-weighted returns, the money of trades stays in the account as cash, and an account that does not
track cash keeps the figures it always had."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from prices.market_calendar import sessions_between
from tests.charts.test_performance import close_to, rate, xirr_brentq
from tests.portfolio.test_history import (  # noqa: F401 (fixtures)
    api,
    current_chart,
    portfolio_of,
    providers,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


def record(client, portfolio_id: int, **fields) -> dict:
    body = {"currency": "USD", "fee": "0", **fields}
    body["date"] = body["date"].isoformat()
    response = client.post(f"/api/portfolios/{portfolio_id}/transactions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def sessions() -> list[date]:
    today = timezone.localdate()
    return sessions_between(mic="XNYS", start=today - timedelta(days=45), end=today - timedelta(days=1))


def step_price(jump: date):
    """AAPL trades at 100 until `jump`, at 120 from it on."""
    return lambda symbol, day: Decimal("100") if day < jump else Decimal("120")


def performance(client, portfolio_id: int) -> dict:
    wait_for("the chart of the present data", current_chart(client, portfolio_id))
    response = client.get(f"/api/portfolios/{portfolio_id}/performance/?range=MAX")
    assert response.status_code == 200, response.content
    return response.json()


def test_deposits_and_withdrawals_are_the_flows_and_the_trades_money_stays_as_cash(providers, api):  # noqa: F811
    # given 1000 deposited, 5 AAPL bought at 100 the same day, the price 100 → 120, 200 withdrawn, then 2 sold
    # at 120 — in a new portfolio, whose default account tracks cash
    days = sessions()
    d0, jump, d2, d3 = days[0], days[5], days[10], days[15]
    providers.market.price_of = step_price(jump)
    portfolio_id = portfolio_of(api)
    # the buy entered before the deposit of its day: that day's money in counts first all the same
    record(api, portfolio_id, symbol="AAPL", type="BUY", date=d0, quantity="5", price="100")
    record(api, portfolio_id, type="DEPOSIT", date=d0, price="1000")
    record(api, portfolio_id, type="WITHDRAWAL", date=d2, price="200")
    record(api, portfolio_id, symbol="AAPL", type="SELL", date=d3, quantity="2", price="120")

    body = performance(api, portfolio_id)

    # value 3 × 120 + cash (1000 − 500 − 200 + 240 = 540) = 900; money in 1000, out 200
    assert (body["value"], body["net_performance"], body["gross_performance"]) == ("900.00", "100.00", "100.00")
    # the deposit's day has nothing at work before it; then 1100 / 1000 on the jump; the withdrawal's day
    # (900 + 200) / 1100 and the sell's (stock out 240, cash in 240) change nothing: 10 %
    assert body["time_weighted_return"] == "0.100000"
    today = timezone.localdate()
    assert rate(body["money_weighted_return"]) == close_to(xirr_brentq([(d0, -1000.0), (d2, 200.0), (today, 900.0)]))
    initial = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()
    assert initial["total_value"] == "900.00"
    [account] = initial["accounts"]
    assert (account["name"], account["tracks_cash"], account["cash"], account["holdings_value"],
            account["total_value"]) == ("Default", True, [{"currency": "USD", "amount": "540.00", "value": "540.00"}],
                                        "360.00", "900.00")
    allocation = api.get(f"/api/portfolios/{portfolio_id}/allocation/").json()
    assert {s["name"]: s["value"] for s in allocation["by_sector"]}["Cash"] == "540.00"


def test_a_buy_the_cash_cannot_cover_is_an_implicit_deposit_of_the_shortfall(providers, api):  # noqa: F811
    # given 300 deposited and 5 AAPL bought at 100: 300 from the cash, 200 brought in
    days = sessions()
    d0, d1, jump = days[0], days[3], days[6]
    providers.market.price_of = step_price(jump)
    portfolio_id = portfolio_of(api)
    record(api, portfolio_id, type="DEPOSIT", date=d0, price="300")
    record(api, portfolio_id, symbol="AAPL", type="BUY", date=d1, quantity="5", price="100")

    body = performance(api, portfolio_id)

    # no cash left; value 600, money in 300 + 200: net 100; the return is the stock's 20 % (the deposit's
    # days earn nothing, worth 300 from end to end)
    assert (body["value"], body["net_performance"], body["time_weighted_return"]) == ("600.00", "100.00",
                                                                                      "0.200000")
    initial = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()
    assert initial["accounts"][0]["cash"] == [] and initial["accounts"][0]["total_value"] == "600.00"


def test_interest_is_income_and_performance_not_a_flow(providers, api):  # noqa: F811
    days = sessions()
    portfolio_id = portfolio_of(api)
    record(api, portfolio_id, type="DEPOSIT", date=days[0], price="1000")
    record(api, portfolio_id, type="INTEREST", date=days[10], price="10", fee="2.50")

    body = performance(api, portfolio_id)

    # 1000 in; 10 interest, 2.50 withheld: value 1007.50, net 7.50, gross 10; TWR 0.75 % (the interest paid out
    # and the cash it brings in net to no flow)
    assert (body["value"], body["net_performance"], body["gross_performance"], body["dividends"], body["fees"]) == (
        "1007.50", "7.50", "10.00", "10.00", "2.50")
    assert body["time_weighted_return"] == "0.007500"
    income = api.get(f"/api/portfolios/{portfolio_id}/income/").json()
    assert income["total"] == {"gross": "10.00", "withheld": "2.50", "net": "7.50", "payments": 1}
    assert [(row["symbol"], row["total"]["gross"]) for row in income["holdings"]] == [("CASH USD", "10.00")]


def test_turning_cash_tracking_on_keeps_the_net_performance_and_the_returns_count_the_idle_cash(providers, api):  # noqa: F811
    # given a portfolio recorded without cash (its account not tracking it, as one from before accounts): a buy,
    # the price 100 → 120, a partial sell and a dividend
    days = sessions()
    d0, jump, d2, d3 = days[0], days[4], days[8], days[12]
    providers.market.price_of = step_price(jump)
    portfolio_id = portfolio_of(api)
    account_url = f"/api/portfolios/{portfolio_id}/accounts/"
    account_id = api.get(account_url).json()[0]["id"]
    assert api.patch(f"{account_url}{account_id}/", {"tracks_cash": False}, format="json").status_code == 200
    record(api, portfolio_id, symbol="AAPL", type="BUY", date=d0, quantity="10", price="100", fee="1")
    record(api, portfolio_id, symbol="AAPL", type="SELL", date=d2, quantity="4", price="120", fee="1")
    record(api, portfolio_id, symbol="AAPL", type="DIVIDEND", date=d3, quantity="6", price="0.5", fee="0.45")
    before = performance(api, portfolio_id)
    # the sell's 479 and the dividend's 2.55 have left: 6 × 120 held; TWR 1000 / 1001 on the buy's day (its
    # fee), 1200 / 1000 on the jump, then the sell's day (720 + 479) / 1200, the dividend's (720 + 2.55) / 720
    assert (before["value"], before["net_performance"]) == ("720.00", "200.55")
    assert before["time_weighted_return"] == "0.202044"  # 1000 / 1001 × 1.2 × 1199 / 1200 × 722.55 / 720 − 1

    assert api.patch(f"{account_url}{account_id}/", {"tracks_cash": True}, format="json").status_code == 200
    after = performance(api, portfolio_id)

    # then the money stays as cash (value + 481.55) and the same gain is made
    assert after["value"] == "1201.55"
    assert (after["net_performance"], after["gross_performance"]) == (before["net_performance"],
                                                                      before["gross_performance"])
    # the returns now count the cash, which earns nothing: the buy's day is the same (1,001 deposited, 1,000 worth
    # of stock bought with it), the sell's too (the proceeds stay, 1199 / 1200: stock out and cash in net to no
    # flow), the dividend is 2.55 on 1199 — 1000 / 1001 × 1.2 × 1199 / 1200 × 1201.55 / 1199 − 1
    assert after["time_weighted_return"] == "0.200350"
    today = timezone.localdate()
    assert rate(after["money_weighted_return"]) == close_to(xirr_brentq([(d0, -1001.0), (today, 1201.55)]))
    assert rate(before["money_weighted_return"]) == close_to(xirr_brentq(
        [(d0, -1001.0), (d2, 479.0), (d3, 2.55), (today, 720.0)]))
