"""A provider-priced instrument's currency and class are the provider's: what the user typed for a new
symbol is provisional until the provider's first answer (a quote or a history) verifies it. Yahoo's
answers come from its look-alike on loopback (tests/stubs/market.py)."""

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from itertools import count

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.cache import portfolio_version_get
from prices.models import Instrument
from prices.providers import provider_get
from tests.factories import UserFactory
from tests.stubs.market import MarketStub

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(settings) -> Iterator[MarketStub]:
    stub = MarketStub()
    with stub.running():
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": stub.url, "api_key": None}}
        settings.PROVIDER_LIMITS = {**settings.PROVIDER_LIMITS,
                                    "yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
        settings.PRICE_PROVIDER = settings.CRYPTO_PRICE_PROVIDER = "yahoo"
        provider_get.cache_clear()
        yield stub
    provider_get.cache_clear()


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=UserFactory(username='ann')).key}")
    return client


PORTFOLIO_NUMBERS = count(1)


def bought(api: APIClient, **fields) -> int:
    """A new portfolio holding the symbol, bought as typed; its id."""
    name = f"Portfolio {next(PORTFOLIO_NUMBERS)}"
    portfolio_id = api.post("/api/portfolios/", {"name": name, "base_currency": "USD"}, format="json").json()["id"]
    body = {"type": "BUY", "date": "2024-01-02", "fee": "0", "quantity": "1", "price": "10", **fields}
    response = api.post(f"/api/portfolios/{portfolio_id}/transactions/", body, format="json")
    assert response.status_code == 201, response.json()
    return portfolio_id


def facts(symbol: str) -> tuple[str, str, str, str]:
    instrument = Instrument.objects.get(symbol=symbol, owner=None)
    return instrument.currency, instrument.asset_class, instrument.exchange_mic, instrument.verification_status


def test_a_quote_that_verifies_an_instrument_sets_its_currency_and_class(market, api):
    # given a Swiss stock typed as an ETF in dollars, and a coin typed as a stock, which Yahoo says are
    # an equity in francs and a cryptocurrency
    market.currencies["NESN.SW"], market.types["NESN.SW"] = "CHF", "EQUITY"
    market.types["BTC-USD"] = "CRYPTOCURRENCY"
    portfolio_id = bought(api, symbol="NESN.SW", currency="USD", asset_class="etf")
    bought(api, symbol="BTC-USD", currency="USD", asset_class="stock")
    assert facts("NESN.SW") == ("USD", "etf", "XNYS", "pending")
    assert facts("BTC-USD") == ("USD", "stock", "XNYS", "pending")
    version = portfolio_version_get(portfolio_id=portfolio_id)

    # when the refresh's quotes verify them
    call_command("refresh_prices", "--sync", stdout=StringIO(), stderr=StringIO())

    # then they are what Yahoo says: a stock in francs; a coin, trading around the clock on no calendar
    assert facts("NESN.SW") == ("CHF", "stock", "XNYS", "verified")
    assert facts("BTC-USD") == ("USD", "crypto", "", "verified")
    body = api.get("/api/instruments/NESN.SW/prices/").json()
    assert (body["currency"], len(body["prices"])) == ("CHF", 1)
    # and the holders' cached data moved on
    assert portfolio_version_get(portfolio_id=portfolio_id) > version
    # and the trade keeps the currency it was made in (converted through FX at its date)
    assert api.get(f"/api/portfolios/{portfolio_id}/transactions/").json()["results"][0]["currency"] == "USD"


def test_a_history_that_verifies_an_instrument_sets_its_currency_and_class(market, api):
    # given a London ETF typed as a stock in pounds; Yahoo's chart says an ETF in pence
    market.currencies["VWRL.L"], market.types["VWRL.L"] = "GBp", "ETF"
    bought(api, symbol="VWRL.L", currency="GBP", date=(timezone.localdate() - timedelta(days=20)).isoformat())

    # when its history is backfilled
    call_command("backfill_history", "--symbols", "VWRL.L", stdout=StringIO(), stderr=StringIO())

    # then it is in pence, an ETF, and its closes are stored
    assert facts("VWRL.L") == ("GBp", "etf", "XNYS", "verified")
    body = api.get("/api/instruments/VWRL.L/prices/").json()
    assert body["currency"] == "GBp" and len(body["prices"]) >= 10


def test_after_verification_the_class_is_staffs_and_the_currency_still_the_providers(market, api):
    # given a verified instrument that staff have since classed as a fund
    market.types["BRK-B"] = "EQUITY"
    bought(api, symbol="BRK-B", currency="USD")
    call_command("refresh_prices", "--sync", stdout=StringIO(), stderr=StringIO())
    Instrument.objects.filter(symbol="BRK-B").update(asset_class="fund")

    # when a later answer calls it an equity quoted in another currency
    market.currencies["BRK-B"] = "EUR"
    call_command("refresh_prices", "--sync", "--force", stdout=StringIO(), stderr=StringIO())

    # then staff's class stays, and the currency follows the prices the provider gives
    assert facts("BRK-B") == ("EUR", "fund", "XNYS", "verified")


def test_nothing_a_provider_says_touches_a_users_manual_instrument(market, api):
    # given ann's hand-priced AMD and the shared one, which Yahoo prices in dollars
    market.currencies["AMD"], market.types["AMD"] = "USD", "EQUITY"
    bought(api, symbol="AMD", currency="JPY", provider="manual", asset_class="crypto")
    bought(api, symbol="AMD", currency="EUR", provider="yahoo")

    # when the prices are refreshed
    call_command("refresh_prices", "--sync", stdout=StringIO(), stderr=StringIO())

    # then the shared AMD is Yahoo's, and hers keeps what she typed
    assert facts("AMD") == ("USD", "stock", "XNYS", "verified")
    mine = Instrument.objects.get(symbol="AMD", owner__username="ann")
    assert (mine.currency, mine.asset_class, mine.provider, mine.prices.count()) == ("JPY", "crypto", "manual", 0)
