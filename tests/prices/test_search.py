"""Instrument search through the API: known instruments first, then the configured providers' search
endpoints (loopback stubs) fetched by a real worker through the provider gateway, cached a day."""

import time
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from portfolio.models import Transaction, WatchlistItem
from prices.models import Instrument
from prices.providers import provider_get
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory, UserFactory
from tests.prices.providers.test_search import CG_SEARCH, TD_SEARCH, YAHOO_SEARCH
from tests.stubs import StubServer, html_response, json_response, text_response

pytestmark = pytest.mark.django_db(transaction=True)

YAHOO_EMPTY = '{"explains":[],"count":0,"quotes":[],"news":[],"nav":[],"lists":[],"researchReports":[]}'
YAHOO_APPLE = ('{"count":1,"quotes":[{"exchange":"NMS","shortname":"Apple Inc.","quoteType":"EQUITY","symbol":"AAPL",'
               '"longname":"Apple Inc.","exchDisp":"NASDAQ","typeDisp":"Equity","isYahooFinance":true}],"news":[]}')


@pytest.fixture
def providers(settings) -> Iterator[StubServer]:
    """Yahoo for stocks, CoinGecko for crypto, both stubbed on one loopback server."""
    stub = StubServer()
    with stub.running():
        settings.PRICE_PROVIDER, settings.CRYPTO_PRICE_PROVIDER = "yahoo", "coingecko"
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": stub.url, "api_key": None},
                              "coingecko": {"base_url": f"{stub.url}/api/v3", "api_key": None},
                              "twelvedata": {"base_url": stub.url, "api_key": "TDKEY"}}
        fast = {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}
        settings.PROVIDER_LIMITS = {"yahoo": fast, "coingecko": fast, "twelvedata": fast}
        settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
        settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.05
        settings.CHART_DEBOUNCE_SECONDS = 0
        provider_get.cache_clear()
        yield stub
    provider_get.cache_clear()


def search(api: APIClient, query: str, *, until_complete: bool = True, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        started = time.monotonic()
        response = api.get("/api/instruments/search/", {"q": query})
        assert response.status_code == 200, response.content
        assert time.monotonic() - started < 1.0  # never waits for a provider
        body = response.json()
        if body["complete"] or not until_complete:
            return body
        assert time.monotonic() < deadline, f"search still pending: {body}"
        time.sleep(0.05)


def rows(body: dict) -> list[tuple]:
    return [(r["symbol"], r["provider"], r["currency"], r["asset_class"], r["known"]) for r in body["results"]]


def test_known_instruments_first_then_the_providers_answer_once_a_day(worker, providers, api, user, other_user):
    providers.route("/v1/finance/search", json_response(YAHOO_APPLE))
    providers.route("/api/v3/search", json_response('{"coins":[],"exchanges":[],"icos":[],"categories":[],"nfts":[]}'))
    aapl = InstrumentFactory(symbol="AAPL", name="Apple Inc.", provider="yahoo")
    TransactionFactory(portfolio=PortfolioFactory(owner=user), instrument=aapl)
    InstrumentFactory(symbol="APPLE-PIE", name="Grandma's apple pie", provider="manual", owner=other_user)
    # a shared instrument only she holds: listing it would tell that someone on this Folio holds it
    TransactionFactory(portfolio=PortfolioFactory(owner=other_user),
                       instrument=InstrumentFactory(symbol="APPLEQ", name="Apple Obscurities Ltd", provider="yahoo"))

    first = search(api, "Apple", until_complete=False)
    assert rows(first) == [("AAPL", "yahoo", "USD", "stock", True)]  # local at once; not hers (private or shared)
    assert (first["pending"], first["complete"]) == (["yahoo", "coingecko"], False)

    done = search(api, "apple")
    assert rows(done) == [("AAPL", "yahoo", "USD", "stock", True)]  # the provider's AAPL is the known one
    assert (done["pending"], done["failed"], done["query"]) == ([], [], "apple")

    # Another user, the same query in other case: answered from the day's cache, no new request; AAPL is
    # the provider's answer for him (he does not hold it), and never what others hold.
    other = APIClient()
    other.force_authenticate(UserFactory(username="bob"))
    assert rows(search(other, " APPLE ")) == [("AAPL", "yahoo", "USD", "stock", False)]
    assert len(providers.requests_to("/v1/finance/search")) == 1
    assert len(providers.requests_to("/api/v3/search")) == 1


def test_a_coin_found_by_name_is_the_coingecko_coin_and_fills_a_trade(worker, providers, api, portfolio):
    providers.route("/v1/finance/search", json_response(YAHOO_EMPTY))
    providers.route("/api/v3/search", json_response(CG_SEARCH))

    body = search(api, "bitcoin")

    # A coin whose ticker Folio does not map to its id is named by its id, which a trade then asks for.
    assert rows(body)[:2] == [("BTC", "coingecko", "USD", "crypto", False),
                              ("WRAPPED-BITCOIN", "coingecko", "USD", "crypto", False)]
    assert body["results"][0]["provider_symbol"] == "bitcoin"
    pick = body["results"][0]
    response = api.post(f"/api/portfolios/{portfolio.pk}/transactions/", {
        "symbol": pick["symbol"], "provider": pick["provider"], "asset_class": pick["asset_class"],
        "currency": pick["currency"], "name": pick["name"], "type": "BUY", "date": "2024-03-01", "quantity": "0.5",
        "price": "60000",
    }, format="json")
    assert response.status_code == 201, response.content
    coin = Instrument.objects.get(symbol="BTC", owner__isnull=True)
    assert (coin.provider, coin.provider_symbol, coin.asset_class, coin.currency, coin.name) == (
        "coingecko", "bitcoin", "crypto", "USD", "Bitcoin")


def test_a_swiss_listing_comes_with_its_currency(worker, providers, api):
    providers.route("/v1/finance/search", json_response(YAHOO_SEARCH))
    providers.route("/api/v3/search", json_response('{"coins":[],"exchanges":[],"icos":[],"categories":[],"nfts":[]}'))

    body = search(api, "BALN.SW")

    assert rows(body)[0] == ("BALN.SW", "yahoo", "CHF", "stock", False)
    assert body["results"][0]["name"] == "Bâloise Holding AG"
    # Yahoo's BTC-EUR is left out: coins come from the crypto provider, CoinGecko
    assert [r[0] for r in rows(body)] == ["BALN.SW", "SPY"]


def test_a_ticker_the_search_answered_without_is_refused_naming_the_field(worker, providers, api, portfolio):
    providers.route("/v1/finance/search", json_response(YAHOO_EMPTY))
    providers.route("/api/v3/search", json_response('{"coins":[],"exchanges":[],"icos":[],"categories":[],"nfts":[]}'))
    assert search(api, "ZQXW")["results"] == []

    response = api.post(f"/api/portfolios/{portfolio.pk}/transactions/", {
        "symbol": "zqxw", "type": "BUY", "date": "2024-03-01", "quantity": "1", "price": "10", "currency": "USD",
    }, format="json")

    assert response.status_code == 400
    assert "ZQXW is not an instrument yahoo knows" in response.json()["symbol"][0]
    assert not Instrument.objects.filter(symbol="ZQXW").exists() and not Transaction.objects.exists()


def test_a_provider_outage_never_blocks_trade_entry(worker, providers, api, portfolio):
    providers.route("/v1/finance/search", text_response("Edge: Too Many Requests", status=429),
                    html_response(status=503))
    providers.route("/api/v3/search", json_response('{"coins":[],"exchanges":[],"icos":[],"categories":[],"nfts":[]}'))

    body = search(api, "QWZX")
    assert (body["failed"], body["results"]) == (["yahoo"], [])
    assert len(providers.requests_to("/v1/finance/search")) == 4  # retried by the gateway, then given up

    response = api.post(f"/api/portfolios/{portfolio.pk}/transactions/", {
        "symbol": "QWZX", "type": "BUY", "date": "2024-03-01", "quantity": "1", "price": "10", "currency": "USD",
    }, format="json")
    assert response.status_code == 201  # the workers verify it later
    assert Instrument.objects.get(symbol="QWZX").verification_status == "pending"


def test_a_rate_limited_search_waits_and_is_answered(worker, providers, api):
    providers.route("/v1/finance/search", text_response("Edge: Too Many Requests", status=429,
                                                         headers={"Retry-After": "0"}), json_response(YAHOO_APPLE))
    providers.route("/api/v3/search", json_response('{"coins":[],"exchanges":[],"icos":[],"categories":[],"nfts":[]}'))

    body = search(api, "apple")

    assert rows(body) == [("AAPL", "yahoo", "USD", "stock", False)]
    assert len(providers.requests_to("/v1/finance/search")) == 2


def test_twelve_data_search_when_it_is_the_configured_provider(worker, providers, api, settings):
    settings.PRICE_PROVIDER = settings.CRYPTO_PRICE_PROVIDER = "twelvedata"
    providers.route("/symbol_search", json_response(TD_SEARCH))

    body = search(api, "AAP")

    # one AAPL: a trade names one instrument per symbol (the first listing, as the provider ranks them)
    assert rows(body) == [("AAPL", "twelvedata", "USD", "stock", False),
                          ("BTC/USD", "twelvedata", "USD", "crypto", False)]
    assert providers.requests_to("/symbol_search")[0].param("apikey") == "TDKEY"


def test_the_simulated_provider_answers_offline_and_refuses_what_it_does_not_know(api, portfolio):
    body = search(api, "bitcoin")
    assert (rows(body), body["complete"]) == ([("BTC", "simulated", "USD", "crypto", False)], True)

    response = api.post(f"/api/portfolios/{portfolio.pk}/transactions/", {
        "symbol": "ZZTOP", "type": "BUY", "date": "2024-03-01", "quantity": "1", "price": "10", "currency": "USD",
    }, format="json")
    assert response.status_code == 400 and "symbol" in response.json()


@pytest.mark.parametrize("query", ["", "   ", "x" * 65])
def test_bad_queries_answer_400_naming_q(api, query):
    response = api.get("/api/instruments/search/", {"q": query})
    assert response.status_code == 400 and "q" in response.json()


def test_search_needs_a_login():
    assert APIClient().get("/api/instruments/search/", {"q": "apple"}).status_code in (401, 403)


def test_own_manual_instruments_are_found_by_their_owner_only(api, user, other_user):
    InstrumentFactory(symbol="MYHOUSE", name="My house", provider="manual", owner=user)
    assert [r["symbol"] for r in search(api, "house")["results"]][:1] == ["MYHOUSE"]
    other = APIClient()
    other.force_authenticate(other_user)
    assert "MYHOUSE" not in [r["symbol"] for r in search(other, "house")["results"]]


def test_the_openapi_schema_describes_the_search(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/instruments/search/"]["get"]
    assert [(p["name"], p["required"]) for p in operation["parameters"]] == [("q", True)]
    answer = schema["components"]["schemas"]["SearchAnswer"]["properties"]
    assert set(answer) == {"query", "results", "pending", "failed", "complete"}
    assert set(schema["components"]["schemas"]["SearchResult"]["properties"]) == {
        "symbol", "name", "exchange", "currency", "asset_class", "provider", "provider_symbol", "known"}


def test_with_redis_down_known_instruments_still_answer(api, user, settings):
    settings.PRICE_PROVIDER = settings.CRYPTO_PRICE_PROVIDER = "yahoo"
    WatchlistItem.objects.create(user=user, instrument=InstrumentFactory(symbol="AAPL", name="Apple Inc.",
                                                                         provider="yahoo"))
    settings.CACHES = {**settings.CACHES, "default": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}

    response = api.get("/api/instruments/search/", {"q": "apple"})

    assert response.status_code == 200
    body = response.json()
    assert (rows(body), body["failed"], body["pending"]) == ([("AAPL", "yahoo", "USD", "stock", True)], ["yahoo"], [])


def test_searches_spend_the_same_quota_as_quotes(worker, providers, api, settings):
    settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS,
                                "yahoo": {"requests_per_second": 1000.0, "daily_quota": 1, "batch_size": None}}
    providers.route("/v1/finance/search", json_response(YAHOO_APPLE))
    providers.route("/api/v3/search", json_response('{"coins":[],"exchanges":[],"icos":[],"categories":[],"nfts":[]}'))

    assert rows(search(api, "apple")) == [("AAPL", "yahoo", "USD", "stock", False)]
    second = search(api, "microsoft")

    assert second["failed"] == ["yahoo"]  # the day's one Yahoo request is spent: refused by the gateway
    assert len(providers.requests_to("/v1/finance/search")) == 1
