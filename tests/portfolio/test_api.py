"""The portfolio API (docs/api.md): auth, CRUD, validation and ownership isolation."""

from datetime import date, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.test import Client
from rest_framework.test import APIClient

from portfolio.models import Portfolio, Transaction
from prices.models import Instrument, VerificationStatus
from tests.factories import InstrumentFactory, TransactionFactory

pytestmark = pytest.mark.django_db

BUY = {"symbol": "AAPL", "type": "BUY", "date": "2024-01-02", "quantity": "10", "price": "185.50",
       "fee": "1", "currency": "USD"}


def tx_url(portfolio_id, tx_id=None):
    base = f"/api/portfolios/{portfolio_id}/transactions/"
    return f"{base}{tx_id}/" if tx_id else base


# --- Token auth


def test_token_endpoint_issues_a_token_that_authenticates(user):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "alice", "password": "correct-horse-battery"},
                           format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    assert len(token) == 40
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/portfolios/").status_code == 200


def test_token_endpoint_rejects_a_wrong_password(user):
    response = APIClient().post("/api/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()


@pytest.mark.parametrize("path", ["/api/portfolios/", "/api/portfolios/1/", "/api/portfolios/1/transactions/"])
def test_anonymous_requests_are_refused(path):
    response = APIClient().get(path)
    assert response.status_code == 401


def test_a_bad_token_is_refused(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/portfolios/").status_code == 401


# --- Portfolios


def test_create_and_list_portfolios(api, user):
    response = api.post("/api/portfolios/", {"name": "Retirement", "base_currency": "eur"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Retirement"
    assert body["base_currency"] == "EUR"
    assert Portfolio.objects.get(pk=body["id"]).owner == user

    listing = api.get("/api/portfolios/").json()
    assert listing["count"] == 1
    assert listing["results"] == [{"id": body["id"], "name": "Retirement", "base_currency": "EUR", "benchmark": None}]


def test_portfolio_list_shows_only_own(api, portfolio, foreign_portfolio):
    names = [p["name"] for p in api.get("/api/portfolios/").json()["results"]]
    assert names == ["Main"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"name": ""}, "name"), ({"name": "X", "base_currency": "XYZ"}, "base_currency"), ({}, "name")],
)
def test_portfolio_create_validation_names_the_field(api, body, field):
    response = api.post("/api/portfolios/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Portfolio.objects.count() == 0


def test_duplicate_portfolio_name_is_a_400(api, portfolio):
    response = api.post("/api/portfolios/", {"name": "Main"}, format="json")
    assert response.status_code == 400
    assert "already" in response.json()["name"][0]


def test_patch_and_delete_portfolio(api, portfolio):
    response = api.patch(f"/api/portfolios/{portfolio.pk}/", {"name": "Renamed", "base_currency": "GBP"},
                         format="json")
    assert response.status_code == 200
    assert response.json() == {"id": portfolio.pk, "name": "Renamed", "base_currency": "GBP", "benchmark": None}
    assert api.delete(f"/api/portfolios/{portfolio.pk}/").status_code == 204
    assert not Portfolio.objects.filter(pk=portfolio.pk).exists()


# --- Transactions


def test_create_transaction_returns_contract_fields_and_creates_instrument(api, portfolio):
    response = api.post(tx_url(portfolio.pk), BUY, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert {k: body[k] for k in ("symbol", "type", "date", "currency", "provider")} == {
        "symbol": "AAPL", "type": "BUY", "date": "2024-01-02", "currency": "USD", "provider": "simulated"
    }
    assert Decimal(body["quantity"]) == Decimal("10")
    assert Decimal(body["price"]) == Decimal("185.50")
    assert Decimal(body["fee"]) == Decimal("1")
    instrument = Instrument.objects.get(symbol="AAPL")
    assert instrument.verification_status == VerificationStatus.PENDING
    assert instrument.currency == "USD"


def test_crypto_transaction_gets_the_requested_provider(api, portfolio):
    body = {**BUY, "symbol": "btc", "provider": "coingecko", "asset_class": "crypto", "quantity": "0.015"}
    response = api.post(tx_url(portfolio.pk), body, format="json")
    assert response.status_code == 201
    instrument = Instrument.objects.get(symbol="BTC")
    assert (instrument.provider, instrument.asset_class, instrument.exchange_mic) == ("coingecko", "crypto", "")


def test_transactions_list_is_paginated_newest_first(api, portfolio):
    instrument = InstrumentFactory(symbol="MSFT")
    for day in range(1, 4):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, day))
    body = api.get(tx_url(portfolio.pk) + "?page_size=2").json()
    assert body["count"] == 3
    assert [t["date"] for t in body["results"]] == ["2024-01-03", "2024-01-02"]
    assert body["next"].endswith("page=2&page_size=2")


@pytest.mark.parametrize(
    ("query", "field"),
    [("page=abc", "page"), ("page=0", "page"), ("page=-1", "page"), ("page=1.5", "page"),
     ("page_size=abc", "page_size"), ("page_size=0", "page_size"), ("page_size=%C2%B2", "page_size")],
)
def test_transactions_list_refuses_a_page_that_is_not_a_whole_number(api, portfolio, query, field):
    response = api.get(tx_url(portfolio.pk) + "?" + query)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_transactions_list_pages_past_the_end_last_and_oversized(api, portfolio):
    instrument = InstrumentFactory(symbol="MSFT")
    for day in range(1, 4):
        TransactionFactory(portfolio=portfolio, instrument=instrument, date=date(2024, 1, day))
    last = api.get(tx_url(portfolio.pk) + "?page_size=2&page=last").json()
    assert [t["date"] for t in last["results"]] == ["2024-01-01"]
    assert api.get(tx_url(portfolio.pk) + "?page_size=2&page=3").status_code == 404
    # Larger than the bound: the bound's page, as documented.
    assert api.get(tx_url(portfolio.pk) + "?page_size=100000").json()["count"] == 3


TOMORROW = (date.today() + timedelta(days=2)).isoformat()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-5"}, "quantity"),
        ({"quantity": "1e30"}, "quantity"),
        ({"quantity": "abc"}, "quantity"),
        ({"price": "-1"}, "price"),
        ({"fee": "-0.01"}, "fee"),
        ({"date": TOMORROW}, "date"),
        ({"date": "1850-01-01"}, "date"),
        ({"date": "2024-13-01"}, "date"),
        ({"type": "GIFT"}, "type"),
        ({"currency": "DOLLARS"}, "currency"),
        ({"currency": "ABC"}, "currency"),
        ({"symbol": "AA PL"}, "symbol"),
        ({"symbol": ""}, "symbol"),
        ({"provider": "bloomberg"}, "provider"),
        ({"type": "SPLIT", "quantity": "4", "price": "10", "fee": "0"}, "price"),
        ({"type": "DIVIDEND", "price": "0"}, "price"),
        ({"type": "FEE", "fee": "0"}, "fee"),
        # a buy's price is never 0 by omission (a browser sends an empty price for letters in a number box)
        ({"price": None}, "price"),
        ({"price": "0"}, "price"),
        ({"type": "SELL", "price": "0"}, "price"),
    ],
)
def test_bad_transaction_is_a_400_naming_the_field_and_writes_nothing(api, portfolio, change, field):
    response = api.post(tx_url(portfolio.pk), {**BUY, **change}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field], response.json()
    assert Transaction.objects.count() == 0
    assert not Instrument.objects.filter(symbol="AAPL").exists()


def test_a_buy_without_a_price_is_refused_and_a_gift_at_0_is_taken(api, portfolio):
    body = {k: v for k, v in BUY.items() if k != "price"}
    refused = api.post(tx_url(portfolio.pk), body, format="json")
    assert refused.status_code == 400
    assert refused.json() == {"price": ["A buy or sell needs its price per share."]}
    gift = api.post(tx_url(portfolio.pk), {**body, "price": "0", "gift": True}, format="json")
    assert gift.status_code == 201, gift.json()
    assert (gift.json()["price"], Transaction.objects.get().price) == ("0.000000", Decimal("0"))
    # a partial edit of that gift keeps it a gift
    edited = api.patch(tx_url(portfolio.pk, gift.json()["id"]), {"note": "from grandma"}, format="json")
    assert edited.status_code == 200, edited.json()
    assert Transaction.objects.get().note == "from grandma"


def test_missing_required_fields_are_each_named(api, portfolio):
    response = api.post(tx_url(portfolio.pk), {}, format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"type", "date", "currency"}
    # The symbol depends on the type (a deposit has none): a buy without one is named once the rest parse.
    response = api.post(tx_url(portfolio.pk), {k: v for k, v in BUY.items() if k != "symbol"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"symbol": ["This field is required."]}
    assert not Transaction.objects.exists()


def test_selling_more_than_held_is_a_400_and_nothing_changes(api, portfolio):
    assert api.post(tx_url(portfolio.pk), BUY, format="json").status_code == 201
    sell = {**BUY, "type": "SELL", "quantity": "10.5", "date": "2024-02-01"}
    response = api.post(tx_url(portfolio.pk), sell, format="json")
    assert response.status_code == 400
    assert response.json() == {"quantity": ["Selling 10.5 on 2024-02-01 is more than the 10 held on that date."]}
    assert Transaction.objects.count() == 1


def test_editing_a_buy_below_a_later_sell_is_rejected(api, portfolio):
    buy = api.post(tx_url(portfolio.pk), BUY, format="json").json()
    api.post(tx_url(portfolio.pk), {**BUY, "type": "SELL", "quantity": "8", "date": "2024-03-01"}, format="json")
    response = api.patch(tx_url(portfolio.pk, buy["id"]), {"quantity": "5"}, format="json")
    assert response.status_code == 400
    assert "quantity" in response.json()
    assert Transaction.objects.get(pk=buy["id"]).quantity == Decimal("10")


def test_deleting_a_buy_a_later_sell_needs_is_rejected(api, portfolio):
    buy = api.post(tx_url(portfolio.pk), BUY, format="json").json()
    api.post(tx_url(portfolio.pk), {**BUY, "type": "SELL", "quantity": "8", "date": "2024-03-01"}, format="json")
    response = api.delete(tx_url(portfolio.pk, buy["id"]))
    assert response.status_code == 400
    assert "transaction" in response.json()
    assert Transaction.objects.count() == 2


def test_patch_put_and_delete_a_transaction(api, portfolio):
    created = api.post(tx_url(portfolio.pk), BUY, format="json").json()
    patched = api.patch(tx_url(portfolio.pk, created["id"]), {"price": "190", "note": "limit order"},
                        format="json")
    assert patched.status_code == 200
    assert Decimal(patched.json()["price"]) == Decimal("190")
    assert patched.json()["note"] == "limit order"
    assert Decimal(patched.json()["quantity"]) == Decimal("10")

    put = api.put(tx_url(portfolio.pk, created["id"]), {**BUY, "symbol": "MSFT", "quantity": "3"}, format="json")
    assert put.status_code == 200
    assert put.json()["symbol"] == "MSFT"
    assert Transaction.objects.get(pk=created["id"]).instrument.symbol == "MSFT"

    assert api.delete(tx_url(portfolio.pk, created["id"])).status_code == 204
    assert Transaction.objects.count() == 0


def test_a_transaction_of_another_portfolio_is_404_under_mine(api, user, portfolio):
    mine_too = api.post("/api/portfolios/", {"name": "Second"}, format="json").json()
    tx = api.post(tx_url(mine_too["id"]), BUY, format="json").json()
    assert api.get(tx_url(portfolio.pk, tx["id"])).status_code == 404


# --- Ownership: another user's portfolio does not exist for you, on every route and method.


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/portfolios/{p}/", None),
        ("patch", "/api/portfolios/{p}/", {"name": "pwned"}),
        ("delete", "/api/portfolios/{p}/", None),
        ("get", "/api/portfolios/{p}/transactions/", None),
        ("post", "/api/portfolios/{p}/transactions/", BUY),
        ("get", "/api/portfolios/{p}/transactions/{t}/", None),
        ("put", "/api/portfolios/{p}/transactions/{t}/", BUY),
        ("patch", "/api/portfolios/{p}/transactions/{t}/", {"quantity": "1"}),
        ("delete", "/api/portfolios/{p}/transactions/{t}/", None),
    ],
)
def test_another_users_portfolio_answers_404(api, foreign_portfolio, method, path, body):
    foreign_tx = TransactionFactory(portfolio=foreign_portfolio, quantity=Decimal("7"))
    url = path.format(p=foreign_portfolio.pk, t=foreign_tx.pk)
    response = getattr(api, method)(url, body, format="json") if body else getattr(api, method)(url)
    assert response.status_code == 404
    foreign_tx.refresh_from_db()
    foreign_portfolio.refresh_from_db()
    assert foreign_tx.quantity == Decimal("7")
    assert foreign_portfolio.name == "Not yours"
    assert Transaction.objects.filter(portfolio=foreign_portfolio).count() == 1


def test_openapi_schema_lists_the_contract_paths(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ["/api/auth/token/", "/api/portfolios/", "/api/portfolios/{portfolio_id}/",
                 "/api/portfolios/{portfolio_id}/transactions/",
                 "/api/portfolios/{portfolio_id}/transactions/{transaction_id}/",
                 "/api/portfolios/{portfolio_id}/accounts/", "/api/portfolios/{portfolio_id}/accounts/{account_id}/"]:
        assert path in paths
    assert set(paths["/api/portfolios/{portfolio_id}/accounts/{account_id}/"]) >= {"get", "patch", "delete"}
    account = response.json()["components"]["schemas"]["AccountBalance"]
    assert set(account["properties"]) == {"id", "name", "platform", "currency", "tracks_cash", "cash", "cash_value",
                                          "holdings_value", "total_value"}
    assert "account" in response.json()["components"]["schemas"]["Transaction"]["properties"]


def test_a_portfolio_picks_a_benchmark(api, portfolio):
    response = api.patch(f"/api/portfolios/{portfolio.pk}/", {"benchmark": "spy"}, format="json")
    assert response.status_code == 200
    assert response.json()["benchmark"] == "SPY"
    assert Instrument.objects.get(symbol="SPY").asset_class == "etf"
    assert api.get("/api/portfolios/").json()["results"][0]["benchmark"] == "SPY"
    bad = api.patch(f"/api/portfolios/{portfolio.pk}/", {"benchmark": "S P Y"}, format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["benchmark"]
    cleared = api.patch(f"/api/portfolios/{portfolio.pk}/", {"benchmark": None}, format="json")
    assert cleared.json()["benchmark"] is None


SLASH_BUY = {"type": "BUY", "date": "2024-01-02", "quantity": "1", "price": "1900", "fee": "0", "currency": "USD"}


def test_a_manual_instrument_with_a_slash_takes_and_shows_its_prices(api, portfolio, user):
    created = api.post(f"/api/portfolios/{portfolio.pk}/transactions/",
                       {**SLASH_BUY, "symbol": "GOLD/OZ", "provider": "manual", "asset_class": "other"}, format="json")
    assert created.status_code == 201, created.json()
    url = f"/api/instruments/{quote('GOLD/OZ', safe='')}/prices/"  # as static/js/dashboard.js builds links
    written = api.post(url, [{"date": "2024-01-03", "close": "2000"}], format="json")
    assert written.status_code == 201, (written.status_code, written.content[:120])
    assert api.get(url).status_code == 200
    assert api.get(f"/api/instruments/{quote('GOLD/OZ', safe='')}/position/").status_code == 200
    page = Client()
    page.force_login(user)
    assert page.get(f"/instruments/{quote('GOLD/OZ', safe='')}/").status_code == 200


def _held(api, portfolio) -> dict[str, str]:
    rows = api.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()["holdings"]
    return {row["symbol"]: row["quantity"] for row in rows}


def _recorded(api, portfolio, symbol: str, *bodies: dict) -> None:
    for body in bodies:
        response = api.post(tx_url(portfolio.pk), {**BUY, "symbol": symbol, "fee": "0", **body}, format="json")
        assert response.status_code == 201, response.json()


def test_the_shares_a_one_for_three_reverse_split_leaves_can_all_be_sold(api, portfolio):
    # given 9 shares and a 1-for-3 split, its ratio as closely as 10 places take it
    InstrumentFactory(symbol="RS", exchange_mic="")
    _recorded(api, portfolio, "RS", {"type": "BUY", "date": "2024-01-02", "quantity": "9", "price": "10"},
              {"type": "SPLIT", "date": "2024-01-05", "quantity": "0.3333333333", "price": "0"})
    # then 9 / 3 = 3 are held (not 9 × 0.3333333333 = 2.9999999997), and selling the 3 the broker holds closes it
    assert _held(api, portfolio) == {"RS": "3"}
    _recorded(api, portfolio, "RS", {"type": "SELL", "date": "2024-01-08", "quantity": "3", "price": "31"})
    assert _held(api, portfolio) == {}


def test_a_fractional_holding_split_three_for_two_keeps_a_quantity_a_sell_can_close(api, portfolio):
    InstrumentFactory(symbol="FR", exchange_mic="")
    _recorded(api, portfolio, "FR", {"type": "BUY", "date": "2024-01-02", "quantity": "12.3456789123", "price": "10"},
              {"type": "SPLIT", "date": "2024-01-05", "quantity": "1.5", "price": "0"})
    # 12.3456789123 × 1.5 = 18.51851836845, kept at a quantity's 10 places (half even): 18.5185183684
    assert _held(api, portfolio) == {"FR": "18.5185183684"}
    _recorded(api, portfolio, "FR", {"type": "SELL", "date": "2024-01-08", "quantity": "18.5185183684", "price": "11"})
    assert _held(api, portfolio) == {}  # not 0.00000000005 shares held for ever

