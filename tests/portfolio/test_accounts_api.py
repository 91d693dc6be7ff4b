"""Accounts through the API: CRUD, the 400s naming their field, other users' accounts as 404, transactions
naming an account, and the cash rules a write must keep (no withdrawal beyond the cash held)."""

from datetime import date
from decimal import Decimal

import pytest

from portfolio.models import Account, Transaction
from prices.fx import fx_rates_store
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory

pytestmark = pytest.mark.django_db


def accounts_url(portfolio_id: int) -> str:
    return f"/api/portfolios/{portfolio_id}/accounts/"


def tx_url(portfolio_id: int) -> str:
    return f"/api/portfolios/{portfolio_id}/transactions/"


@pytest.fixture
def created(api) -> int:
    """A portfolio made through the API, as a user makes one: its default account tracks cash."""
    response = api.post("/api/portfolios/", {"name": "Main", "base_currency": "EUR"}, format="json")
    assert response.status_code == 201
    return response.json()["id"]


def test_a_new_portfolio_has_its_default_account_tracking_cash(api, created):
    assert api.get(accounts_url(created)).json() == [
        {"id": Account.objects.get(portfolio_id=created).pk, "name": "Default", "platform": "", "currency": "EUR",
         "tracks_cash": True, "cash": [], "cash_value": "0.00", "holdings_value": "0.00", "total_value": "0.00"}]


def test_each_account_comes_with_its_cash_balance(api, created):
    # given 1,000 USD deposited into the EUR portfolio's default account (1 USD = 0.90 EUR) and 400 of it spent on
    # 4 shares, worth 110 USD each
    api_tx = f"/api/portfolios/{created}/transactions/"
    fx_rates_store(base="USD", series={date(2024, 1, 2): {"EUR": Decimal("0.9")}})
    aaa = InstrumentFactory(symbol="AAA", currency="USD")
    PriceFactory(instrument=aaa, date=date(2024, 1, 3), close=Decimal("110"))
    for body in ({"type": "DEPOSIT", "date": "2024-01-02", "price": "1000", "currency": "USD"},
                 {"type": "BUY", "symbol": "AAA", "date": "2024-01-02", "quantity": "4", "price": "100",
                  "currency": "USD"}):
        assert api.post(api_tx, {"fee": "0", **body}, format="json").status_code == 201

    (row,) = api.get(accounts_url(created)).json()

    # then the list and the account's own answer carry its cash: 600 USD = 540 EUR, beside 440 USD = 396 EUR of shares
    assert (row["cash"], row["cash_value"], row["holdings_value"], row["total_value"]) == (
        [{"currency": "USD", "amount": "600.00", "value": "540.00"}], "540.00", "396.00", "936.00")
    assert api.get(f"{accounts_url(created)}{row['id']}/").json() == row


def test_create_read_rename_and_delete(api, created):
    response = api.post(accounts_url(created), {"name": " Broker ", "platform": "Interactive Brokers",
                                                "currency": "usd"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("name", "platform", "currency", "tracks_cash")} == {
        "name": "Broker", "platform": "Interactive Brokers", "currency": "USD", "tracks_cash": True}
    url = f"{accounts_url(created)}{body['id']}/"
    assert api.get(url).json() == body
    renamed = api.patch(url, {"name": "IBKR", "tracks_cash": False}, format="json")
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["tracks_cash"], renamed.json()["platform"]) == (
        "IBKR", False, "Interactive Brokers")
    assert [a["name"] for a in api.get(accounts_url(created)).json()] == ["Default", "IBKR"]
    assert api.delete(url).status_code == 204
    assert not Account.objects.filter(pk=body["id"]).exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "Default"}, "name"),  # taken in this portfolio
    ({"name": "Other", "currency": "XYZ"}, "currency"),
    ({"platform": "no name"}, "name"),
])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(api, created, body, field):
    response = api.post(accounts_url(created), body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Account.objects.filter(portfolio_id=created).count() == 1


def test_renaming_to_a_taken_name_is_a_400(api, created):
    other = api.post(accounts_url(created), {"name": "Broker"}, format="json").json()
    response = api.patch(f"{accounts_url(created)}{other['id']}/", {"name": "Default"}, format="json")
    assert response.status_code == 400 and "name" in response.json()
    assert Account.objects.get(pk=other["id"]).name == "Broker"


def test_another_users_portfolio_and_account_answer_404(api, other_user, created):
    foreign = PortfolioFactory(owner=other_user)
    account = Account.objects.get(portfolio=foreign)
    assert api.get(accounts_url(foreign.pk)).status_code == 404
    assert api.post(accounts_url(foreign.pk), {"name": "Mine"}, format="json").status_code == 404
    assert api.get(f"{accounts_url(foreign.pk)}{account.pk}/").status_code == 404
    # nor through one's own portfolio's URL
    assert api.patch(f"{accounts_url(created)}{account.pk}/", {"name": "x"}, format="json").status_code == 404
    assert api.delete(f"{accounts_url(created)}{account.pk}/").status_code == 404
    assert Account.objects.get(pk=account.pk).name == "Default"


def test_an_account_with_transactions_and_the_last_account_are_not_deleted(api, created):
    default = Account.objects.get(portfolio_id=created)
    deposit = {"type": "DEPOSIT", "date": "2024-01-02", "price": "1000", "currency": "EUR"}
    assert api.post(tx_url(created), deposit, format="json").status_code == 201
    response = api.delete(f"{accounts_url(created)}{default.pk}/")
    assert response.status_code == 400
    assert response.json() == {"account": ["'Default' still has 1 transaction: move or delete them first."]}
    Transaction.objects.all().delete()
    response = api.delete(f"{accounts_url(created)}{default.pk}/")
    assert response.status_code == 400
    assert response.json() == {"account": ["A portfolio keeps at least one account."]}
    assert Account.objects.filter(pk=default.pk).exists()


def test_transactions_carry_their_account_the_default_when_none_is_named(api, created):
    default = Account.objects.get(portfolio_id=created)
    broker = api.post(accounts_url(created), {"name": "Broker"}, format="json").json()
    first = api.post(tx_url(created), {"type": "DEPOSIT", "date": "2024-01-02", "price": "500",
                                       "currency": "EUR"}, format="json").json()
    second = api.post(tx_url(created), {"type": "DEPOSIT", "date": "2024-01-02", "price": "700", "currency": "EUR",
                                        "account": broker["id"]}, format="json").json()
    assert (first["account"], first["symbol"], first["quantity"], first["price"]) == (
        default.pk, None, "1.0000000000", "500.000000")
    assert second["account"] == broker["id"]
    listed = api.get(tx_url(created)).json()["results"]
    assert {row["id"]: row["account"] for row in listed} == {first["id"]: default.pk, second["id"]: broker["id"]}
    # a partial edit keeps the account; naming another moves it
    url = f"{tx_url(created)}{second['id']}/"
    assert api.patch(url, {"note": "salary"}, format="json").json()["account"] == broker["id"]
    assert api.patch(url, {"account": default.pk}, format="json").json()["account"] == default.pk


def test_an_account_of_another_portfolio_is_a_400_naming_the_account(api, created, other_user):
    mine_too = api.post("/api/portfolios/", {"name": "Second"}, format="json").json()
    theirs = Account.objects.get(portfolio=PortfolioFactory(owner=other_user))
    for account in (Account.objects.get(portfolio_id=mine_too["id"]).pk, theirs.pk, 999_999):
        response = api.post(tx_url(created), {"type": "DEPOSIT", "date": "2024-01-02", "price": "5",
                                              "currency": "EUR", "account": account}, format="json")
        assert response.status_code == 400
        assert response.json() == {"account": [f"This portfolio has no account {account}."]}
    assert not Transaction.objects.exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"type": "DEPOSIT", "symbol": "AAPL", "price": "5"}, "symbol"),
    ({"type": "DEPOSIT"}, "price"),
    ({"type": "DEPOSIT", "price": "0"}, "price"),
    ({"type": "WITHDRAWAL", "price": "-5"}, "price"),
    ({"type": "DEPOSIT", "price": "5", "fee": "1"}, "fee"),
    ({"type": "INTEREST", "price": "5", "fee": "-1"}, "fee"),
    ({"type": "INTEREST", "price": "5", "quantity": "0"}, "quantity"),
    ({"type": "BUY", "quantity": "1", "price": "5"}, "symbol"),
])
def test_cash_transactions_are_validated_naming_the_field(api, created, body, field):
    response = api.post(tx_url(created), {"date": "2024-01-02", "currency": "EUR", **body}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Transaction.objects.exists()


def test_a_withdrawal_beyond_the_cash_held_is_refused_and_so_is_what_would_lead_to_one(api, created):
    deposit = api.post(tx_url(created), {"type": "DEPOSIT", "date": "2024-01-02", "price": "1000",
                                         "currency": "EUR"}, format="json").json()
    api.post(tx_url(created), {"symbol": "SAP", "provider": "manual", "type": "BUY", "date": "2024-01-03",
                               "quantity": "4", "price": "200", "fee": "1", "currency": "EUR"}, format="json")
    too_much = {"type": "WITHDRAWAL", "date": "2024-01-04", "price": "199.01", "currency": "EUR"}
    response = api.post(tx_url(created), too_much, format="json")
    assert response.status_code == 400
    assert response.json() == {"price": ["Withdrawing 199.01 EUR on 2024-01-04 is more than the 199 the account "
                                         "holds on that date."]}
    withdrawal = api.post(tx_url(created), {**too_much, "price": "199"}, format="json")
    assert withdrawal.status_code == 201
    # and deleting the deposit, or making it smaller, would leave that withdrawal without its cash
    assert api.delete(f"{tx_url(created)}{deposit['id']}/").status_code == 400
    response = api.patch(f"{tx_url(created)}{deposit['id']}/", {"price": "900"}, format="json")
    assert response.status_code == 400 and "price" in response.json()
    assert Transaction.objects.get(pk=deposit["id"]).price == Decimal("1000")


def test_no_deposit_in_an_account_that_does_not_track_cash(api, created):
    default = Account.objects.get(portfolio_id=created)
    assert api.patch(f"{accounts_url(created)}{default.pk}/", {"tracks_cash": False}, format="json").status_code == 200
    response = api.post(tx_url(created), {"type": "DEPOSIT", "date": "2024-01-02", "price": "5", "currency": "EUR"},
                        format="json")
    assert response.status_code == 400
    assert response.json() == {"account": ["'Default' does not track cash: turn its cash tracking on (tracks_cash) "
                                           "to record deposits and withdrawals in it."]}
    # and one that holds deposits cannot stop tracking cash
    assert api.patch(f"{accounts_url(created)}{default.pk}/", {"tracks_cash": True}, format="json").status_code == 200
    assert api.post(tx_url(created), {"type": "DEPOSIT", "date": "2024-01-02", "price": "5", "currency": "EUR"},
                    format="json").status_code == 201
    response = api.patch(f"{accounts_url(created)}{default.pk}/", {"tracks_cash": False}, format="json")
    assert response.status_code == 400 and "tracks_cash" in response.json()
    assert Account.objects.get(pk=default.pk).tracks_cash is True


def test_an_account_sells_only_the_shares_it_holds_a_split_counting_in_every_account(api, created):
    broker = api.post(accounts_url(created), {"name": "Broker"}, format="json").json()["id"]
    trade = {"symbol": "SAP", "provider": "manual", "currency": "EUR", "fee": "0"}
    assert api.post(tx_url(created), {**trade, "type": "BUY", "date": "2024-01-02", "quantity": "10",
                                      "price": "100"}, format="json").status_code == 201  # in Default
    sell = {**trade, "type": "SELL", "date": "2024-01-05", "quantity": "1", "price": "110", "account": broker}
    response = api.post(tx_url(created), sell, format="json")
    assert response.status_code == 400
    assert response.json() == {"quantity": ["Selling 1 on 2024-01-05 is more than the 0 held in account 'Broker' "
                                            "on that date."]}
    assert api.post(tx_url(created), {**trade, "type": "BUY", "date": "2024-01-03", "quantity": "2", "price": "100",
                                      "account": broker}, format="json").status_code == 201
    assert api.post(tx_url(created), {**trade, "type": "SPLIT", "date": "2024-01-04", "quantity": "2",
                                      "price": "0"}, format="json").status_code == 201
    # the broker's 2 shares are 4 after the split recorded in Default
    assert api.post(tx_url(created), {**sell, "quantity": "4"}, format="json").status_code == 201
    assert api.post(tx_url(created), {**sell, "quantity": "1"}, format="json").status_code == 400

    text = ("date,type,symbol,quantity,price,fee,currency,provider,account\n"
            "2024-02-01,SELL,SAP,10,120,0,EUR,manual,Default\n"
            "2024-02-01,SELL,SAP,1,120,0,EUR,manual,Broker\n")
    response = api.post(f"{tx_url(created)}import/", text.encode(), content_type="text/csv")
    assert response.status_code == 400
    assert response.json() == {"errors": [{"row": 3, "column": "quantity", "message": (
        "Selling 1 on 2024-02-01 is more than the 0 held in account 'Broker' on that date.")}]}


def test_a_split_leaves_the_accounts_shares_adding_up_to_the_portfolios_so_selling_them_all_closes_it(api, created):
    # given 1 share in each of two accounts, then a 1-for-3 reverse split (0.3333333333 at a quantity's places)
    broker = api.post(accounts_url(created), {"name": "Broker"}, format="json").json()["id"]
    default = api.get(accounts_url(created)).json()[0]["id"]
    trade = {"symbol": "TRI", "provider": "manual", "currency": "EUR", "fee": "0"}
    for account in (default, broker):
        assert api.post(tx_url(created), {**trade, "type": "BUY", "date": "2024-01-02", "quantity": "1",
                                          "price": "100", "account": account}, format="json").status_code == 201
    assert api.post(tx_url(created), {**trade, "type": "SPLIT", "date": "2024-02-01", "quantity": "0.3333333333",
                                      "price": "0"}, format="json").status_code == 201

    # then the portfolio holds 2/3 of a share rounded once, and the accounts' shares add up to it: the step their own
    # roundings leave over goes to one of them (the first of equals)
    holdings = api.get(f"/api/dashboard-holdings-data/{created}/").json()["holdings"]
    assert [h["quantity"] for h in holdings if h["symbol"] == "TRI"] == ["0.6666666667"]
    sell = {**trade, "type": "SELL", "date": "2024-03-01", "price": "300"}
    too_many = api.post(tx_url(created), {**sell, "quantity": "0.3333333335", "account": default}, format="json")
    assert too_many.status_code == 400 and "0.3333333334 held in account 'Default'" in too_many.json()["quantity"][0]

    # and each account selling all it holds closes the position: nothing is left listed
    assert api.post(tx_url(created), {**sell, "quantity": "0.3333333334", "account": default},
                    format="json").status_code == 201
    assert api.post(tx_url(created), {**sell, "quantity": "0.3333333333", "account": broker},
                    format="json").status_code == 201
    holdings = api.get(f"/api/dashboard-holdings-data/{created}/").json()["holdings"]
    assert [h for h in holdings if h["symbol"] == "TRI"] == []


def test_the_accounts_add_up_to_the_total_value_to_the_cent_as_shown(api, created):
    # given 5 shares at 2.025 in each of two accounts: 10.125 each, 20.25 in all
    broker = api.post(accounts_url(created), {"name": "Broker"}, format="json").json()["id"]
    trade = {"symbol": "HALF", "provider": "manual", "currency": "EUR", "fee": "0", "type": "BUY",
             "date": "2024-01-02", "quantity": "5", "price": "2.025"}
    for account in ({}, {"account": broker}):
        assert api.post(tx_url(created), {**trade, **account}, format="json").status_code == 201

    initial = api.get(f"/api/dashboard-initial-data/{created}/").json()

    # then each account shows within a cent of its own value, and they add up to the total shown (rounded apart,
    # 10.12 + 10.12 would not)
    assert initial["total_value"] == "20.25"
    assert [(a["name"], a["cash_value"], a["holdings_value"], a["total_value"]) for a in initial["accounts"]] == [
        ("Default", "0.00", "10.13", "10.13"), ("Broker", "0.00", "10.12", "10.12")]
