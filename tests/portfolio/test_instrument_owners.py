"""Instruments are shared facts, not first-come settings: what one user types for a symbol (a manual
provider, a currency, a class) never decides how another user's holding of that symbol is priced.
Prices come from the Yahoo look-alike on loopback (tests/stubs/market.py)."""

from collections.abc import Iterator
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from prices.models import Instrument
from prices.providers import provider_get
from prices.providers.base import SearchHit
from prices.search_cache import search_answer_set
from tests.factories import UserFactory
from tests.stubs.market import MarketStub, stub_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(settings) -> Iterator[MarketStub]:
    stub = MarketStub()
    with stub.running():
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": stub.url, "api_key": None}}
        settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS,
                                    "yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
        settings.PRICE_PROVIDER = settings.CRYPTO_PRICE_PROVIDER = "yahoo"
        provider_get.cache_clear()  # the client is built against the stub
        yield stub
    provider_get.cache_clear()


def api_of(username: str) -> APIClient:
    user = UserFactory(username=username)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def portfolio_of(client: APIClient) -> int:
    response = client.post("/api/portfolios/", {"name": "Main", "base_currency": "USD"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def buy(client: APIClient, portfolio_id: int, **fields) -> dict:
    body = {"type": "BUY", "date": "2024-01-02", "fee": "0", **fields}
    response = client.post(f"/api/portfolios/{portfolio_id}/transactions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def refresh() -> None:
    call_command("refresh_prices", "--sync", stdout=StringIO(), stderr=StringIO())


def test_a_manual_symbol_typed_first_does_not_squat_it_for_the_next_user(market):
    # given ann, who first bought AMD as a hand-priced crypto in yen
    ann, ben = api_of("ann"), api_of("ben")
    ann_portfolio, ben_portfolio = portfolio_of(ann), portfolio_of(ben)
    anns = buy(ann, ann_portfolio, symbol="AMD", provider="manual", currency="JPY", asset_class="crypto",
               quantity="5", price="20000")
    assert anns["provider"] == "manual"

    # when ben then buys AMD in dollars, and the prices are refreshed
    bens = buy(ben, ben_portfolio, symbol="AMD", currency="USD", quantity="10", price="150")
    refresh()

    # then ben's AMD is the shared one priced by the provider, and his holding is worth its price
    assert bens["provider"] == "yahoo"
    price = Decimal(stub_price("AMD"))
    body = ben.get("/api/instruments/AMD/prices/").json()
    assert (body["provider"], body["currency"], body["verification_status"]) == ("yahoo", "USD", "verified")
    assert [Decimal(p["close"]) for p in body["prices"]] == [price]
    initial = ben.get(f"/api/dashboard-initial-data/{ben_portfolio}/").json()
    assert initial["total_value"] == f"{10 * price:.2f}" != "0.00"
    holding = ben.get(f"/api/dashboard-holdings-data/{ben_portfolio}/").json()["holdings"][0]
    assert (holding["symbol"], Decimal(holding["price"])) == ("AMD", price)
    # and ann keeps her own hand-priced AMD, untouched by the refresh
    body = ann.get("/api/instruments/AMD/prices/").json()
    assert (body["provider"], body["currency"], body["prices"]) == ("manual", "JPY", [])
    assert ann.get(f"/api/portfolios/{ann_portfolio}/transactions/").json()["results"][0]["provider"] == "manual"
    assert sorted(Instrument.objects.filter(symbol="AMD").values_list("provider", "currency", "asset_class")) == [
        ("manual", "JPY", "crypto"), ("yahoo", "USD", "stock")]


def test_a_symbol_names_the_users_own_manual_instrument_else_the_shared_one(market):
    # given ann's own manual GOLD, and the shared GOLD someone else bought first
    ann, ben = api_of("ann"), api_of("ben")
    ann_portfolio, ben_portfolio = portfolio_of(ann), portfolio_of(ben)
    buy(ben, ben_portfolio, symbol="GOLD", currency="USD", quantity="1", price="20")
    buy(ann, ann_portfolio, symbol="GOLD", provider="manual", currency="USD", quantity="1", price="2000")

    # when ann adds to GOLD without naming a provider, edits it, and names yahoo explicitly
    more = buy(ann, ann_portfolio, symbol="gold", currency="USD", quantity="1", price="2100")
    edited = ann.patch(f"/api/portfolios/{ann_portfolio}/transactions/{more['id']}/", {"price": "2150"},
                       format="json")
    listed = buy(ann, ann_portfolio, symbol="GOLD", provider="yahoo", currency="USD", quantity="1",
                 price="21", date="2024-01-03")

    # then her unnamed buys are her own manual GOLD, and the explicit one the shared GOLD ben holds too
    assert (more["provider"], edited.status_code, edited.json()["provider"]) == ("manual", 200, "manual")
    assert listed["provider"] == "yahoo"
    owners = {tx["id"]: tx["provider"] for tx in
              ann.get(f"/api/portfolios/{ann_portfolio}/transactions/").json()["results"]}
    assert sorted(owners.values()) == ["manual", "manual", "yahoo"]
    assert Instrument.objects.filter(symbol="GOLD").count() == 2
    holdings = ann.get(f"/api/dashboard-holdings-data/{ann_portfolio}/").json()["holdings"]
    assert sorted(Decimal(h["quantity"]) for h in holdings) == [Decimal(1), Decimal(2)]


def test_a_new_shared_instruments_name_is_its_providers_never_what_a_user_typed(api, other_user):
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}")
    # given a user's first trade of NEWCO, sent with a note of theirs as its name (no search has named it)
    mine = api.post("/api/portfolios/", {"name": "Mine"}, format="json").json()["id"]
    trade = {"type": "BUY", "symbol": "NEWCO", "provider": "yahoo", "date": "2024-03-01", "quantity": "1",
             "price": "10", "fee": "0", "currency": "USD", "name": "Alice's private note: call +1-555-0100"}
    assert api.post(f"/api/portfolios/{mine}/transactions/", trade, format="json").status_code == 201
    # and a provider's search that named another new symbol, found by another query
    search_answer_set(provider="yahoo", query="newer", hits=[SearchHit(
        symbol="NWR", name="Newer Corp", exchange="NMS", currency="USD", asset_class="stock", provider="yahoo")])
    nwr = {**trade, "symbol": "NWR"}
    assert api.post(f"/api/portfolios/{mine}/transactions/", nwr, format="json").status_code == 201

    # then another user holding them sees the provider's name, or the symbol: never the first user's text
    theirs = other.post("/api/portfolios/", {"name": "Theirs"}, format="json").json()["id"]
    for symbol in ("NEWCO", "NWR"):
        assert other.post(f"/api/portfolios/{theirs}/transactions/", {**trade, "symbol": symbol, "name": ""},
                          format="json").status_code == 201
    names = {h["symbol"]: h["name"] for h in other.get(f"/api/dashboard-holdings-data/{theirs}/").json()["holdings"]}
    assert names == {"NEWCO": "NEWCO", "NWR": "Newer Corp"}


def test_a_coin_takes_its_own_coins_name_and_a_long_name_is_cut_to_the_column(api):
    # given a CoinGecko search listing Ethereum and a bridged ether under one ticker, and a name of 260 characters
    search_answer_set(provider="coingecko", query="eth", hits=[
        SearchHit(symbol="ETH", name="Ethereum", exchange="", currency="USD", asset_class="crypto",
                  provider="coingecko", provider_symbol="ethereum"),
        SearchHit(symbol="ETH", name="StarkGate Bridged Ether", exchange="", currency="USD", asset_class="crypto",
                  provider="coingecko", provider_symbol="starkgate-bridged-ether")])
    search_answer_set(provider="yahoo", query="long", hits=[SearchHit(
        symbol="LONGN", name="L" * 260, exchange="NMS", currency="USD", asset_class="stock", provider="yahoo")])
    mine = api.post("/api/portfolios/", {"name": "Mine"}, format="json").json()["id"]
    for symbol, provider in (("ETH", "coingecko"), ("LONGN", "yahoo")):
        trade = {"type": "BUY", "symbol": symbol, "provider": provider, "date": "2024-03-01", "quantity": "1",
                 "price": "10", "fee": "0", "currency": "USD"}
        assert api.post(f"/api/portfolios/{mine}/transactions/", trade, format="json").status_code == 201
    # then each is named as its provider names that instrument (the coin by its id), within what the column holds
    assert Instrument.objects.get(symbol="ETH", owner=None).name == "Ethereum"
    assert Instrument.objects.get(symbol="LONGN", owner=None).name == "L" * 200
