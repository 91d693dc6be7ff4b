"""Each portfolio's value and the caller's position in an instrument through the API, priced by a real
worker's refresh from the Yahoo look-alike."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory
from tests.portfolio.test_history import (  # noqa: F401 (fixtures)
    api,
    buy,
    portfolio_of,
    providers,
    wait_for,
    weekday_before,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_values_and_position_follow_the_prices_the_workers_fetch(providers, api, other_user):  # noqa: F811
    providers.market.price_of = lambda symbol, day: Decimal("250")  # every close and quote
    day = weekday_before(timezone.localdate() - timedelta(days=10))
    main, side = portfolio_of(api, "USD", "Main"), portfolio_of(api, "USD", "Side")
    buy(api, main, symbol="NVDA", date=day, quantity="4", price="200")
    buy(api, side, symbol="NVDA", date=day, quantity="1", price="100")
    job = api.post("/api/prices/refresh/").json()
    wait_for("the refresh", lambda: api.get(job["progress_url"]).json()["state"] == "SUCCESS")
    wait_for("the closes", lambda: api.get("/api/portfolios/values/").json()["results"][0]["total_value"] == "1000.00")

    values = {row["name"]: row for row in api.get("/api/portfolios/values/").json()["results"]}
    assert (values["Main"]["total_value"], values["Main"]["unrealized_gain"]) == ("1000.00", "200.00")
    assert (values["Side"]["total_value"], values["Side"]["unrealized_gain_percent"]) == ("250.00", "150.00")

    body = api.get("/api/instruments/NVDA/position/").json()
    assert [(p["portfolio"], p["quantity"], p["cost_basis"], p["market_value"]) for p in body["positions"]] == [
        (main, "4", "800.00", "1000.00"), (side, "1", "100.00", "250.00")]
    assert [(t["portfolio"], t["date"], t["type"], t["quantity"], t["price"]) for t in body["trades"]] == [
        (side, day.isoformat(), "BUY", "1", "100"), (main, day.isoformat(), "BUY", "4", "200")]  # newest first


def test_others_positions_and_private_instruments_answer_404(api, other_user):  # noqa: F811
    house = InstrumentFactory(symbol="HOUSE", provider="manual", owner=other_user)
    TransactionFactory(portfolio=PortfolioFactory(owner=other_user), instrument=house)
    assert api.get("/api/instruments/HOUSE/position/").status_code == 404
    TransactionFactory(portfolio=PortfolioFactory(owner=other_user), instrument=InstrumentFactory(symbol="KO"))
    assert api.get("/api/instruments/KO/position/").status_code == 404  # she holds it, the caller does not
    assert api.get("/api/portfolios/values/").json()["results"] == []
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"/api/portfolios/values/", "/api/instruments/{symbol}/position/"} <= set(schema)
