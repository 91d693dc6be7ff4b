"""Search, trade, profiles and income end to end: a real worker, the Yahoo look-alike (search, quoteSummary,
quotes, charts) and the CoinGecko/Frankfurter look-alike computing their answers — nothing scripted per test."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.portfolio.test_history import (  # noqa: F401 (fixtures)
    api,
    portfolio_of,
    providers,
    wait_for,
    weekday_before,
)

pytestmark = pytest.mark.django_db(transaction=True)


def search(api, query: str) -> dict:  # noqa: F811
    deadline = time.monotonic() + 20
    while not (body := api.get("/api/instruments/search/", {"q": query}).json())["complete"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def test_search_pick_trade_and_allocate_through_the_look_alikes(providers, api):  # noqa: F811
    market = providers.market
    market.names = {"AAPL": "Apple Inc.", "APP": "AppLovin Corporation", "SPY": "SPDR S&P 500 ETF Trust"}
    market.types = {"SPY": "ETF"}
    market.profiles = {"AAPL": {"sector": "Technology", "industry": "Consumer Electronics", "country": "United States"},
                       "SPY": {"sectorWeightings": {"technology": 0.5, "healthcare": 0.25}}}
    portfolio_id = portfolio_of(api)
    day = weekday_before(timezone.localdate() - timedelta(days=30))

    apple = search(api, "apple")["results"]
    assert [(r["symbol"], r["name"], r["provider"], r["currency"]) for r in apple] == [
        ("AAPL", "Apple Inc.", "yahoo", "USD")]
    coin = search(api, "bitcoin")["results"][0]
    assert (coin["symbol"], coin["provider"], coin["provider_symbol"]) == ("BTC", "coingecko", "bitcoin")
    # each provider asked once per query, whoever asks again
    assert market.search_requests.count("bitcoin") == 1
    assert providers.world.requests.count("/api/v3/search?query=apple") == 1

    for pick, quantity, price in ((apple[0], "10", "100"), (coin, "0.1", "40000"),
                                  (search(api, "SPY")["results"][0], "4", "500")):
        response = api.post(f"/api/portfolios/{portfolio_id}/transactions/", {
            "symbol": pick["symbol"], "provider": pick["provider"], "asset_class": pick["asset_class"],
            "currency": pick["currency"], "type": "BUY", "date": day.isoformat(), "quantity": quantity,
            "price": price}, format="json")
        assert response.status_code == 201, response.json()
    assert search(api, "ZZQX")["results"] == []
    refused = api.post(f"/api/portfolios/{portfolio_id}/transactions/", {
        "symbol": "ZZQX", "type": "BUY", "date": day.isoformat(), "quantity": "1", "price": "1", "currency": "USD"},
        format="json")
    assert refused.status_code == 400 and list(refused.json()) == ["symbol"]

    allocation = wait_for("the profiles fetched by the worker", lambda: (
        body if not (body := api.get(f"/api/portfolios/{portfolio_id}/allocation/").json())["profiles_pending"]
        else None))
    sectors = {row["name"]: row["weight"] for row in allocation["by_sector"]}
    assert set(sectors) == {"Technology", "Healthcare", "Crypto", "unknown"}
    assert {row["name"] for row in allocation["by_region"]} == {"North America", "Crypto", "unknown"}
    assert sorted(market.profile_requests) == ["AAPL", "SPY"]  # never for the coin
