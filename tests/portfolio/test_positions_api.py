"""Each portfolio's value and the caller's position in an instrument through the API, priced by a real
worker's refresh from the Yahoo look-alike."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory
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


def test_the_position_of_each_of_two_instruments_of_one_symbol(api, other_user):  # noqa: F811
    # given the user's own manual KO (made first: the lower id) and the shared KO, held in two portfolios,
    # 3 bought at 30 and 5 at 20, both closing 50 today; and another user's private KO
    today, user = timezone.localdate(), api.user
    main, side = PortfolioFactory(owner=user, name="Main"), PortfolioFactory(owner=user, name="Side")
    manual = InstrumentFactory(symbol="KO", owner=user, provider="manual", exchange_mic="")
    shared = InstrumentFactory(symbol="KO", exchange_mic="")
    theirs = InstrumentFactory(symbol="KO", owner=other_user, provider="manual", exchange_mic="")
    TransactionFactory(portfolio=main, instrument=manual, quantity=Decimal("3"), price=Decimal("30"),
                       date=today - timedelta(days=2))
    TransactionFactory(portfolio=side, instrument=shared, quantity=Decimal("5"), price=Decimal("20"),
                       date=today - timedelta(days=1))
    TransactionFactory(portfolio=PortfolioFactory(owner=other_user), instrument=theirs)
    for instrument in (manual, shared):
        PriceFactory(instrument=instrument, date=today, close=Decimal("50"))

    def position(query: str = "") -> tuple:
        body = api.get(f"/api/instruments/KO/position/{query}").json()
        return (body["instrument_id"], body["provider"],
                [(p["portfolio"], p["quantity"], p["cost_basis"], p["market_value"]) for p in body["positions"]],
                [(t["portfolio"], t["quantity"], t["price"]) for t in body["trades"]])

    # then ?instrument=<id> answers with that one's position and trades, each its own
    assert position(f"?instrument={manual.pk}") == (
        manual.pk, "manual", [(main.pk, "3", "90.00", "150.00")], [(main.pk, "3", "30")])
    assert position(f"?instrument={shared.pk}") == (
        shared.pk, "simulated", [(side.pk, "5", "100.00", "250.00")], [(side.pk, "5", "20")])
    # and the symbol alone still names the user's own manual one
    assert position() == position(f"?instrument={manual.pk}")
    # another user's private KO and an id the symbol does not name are no instrument at all; a malformed id is
    # a 400 naming the field
    pep = InstrumentFactory(symbol="PEP")
    for unknown in (theirs.pk, pep.pk, 10**9):
        answer = api.get(f"/api/instruments/KO/position/?instrument={unknown}")
        assert (answer.status_code, str(theirs.pk) in answer.content.decode()) == (404, False)
    for malformed in ("x", "0", "-1", "1.5"):
        answer = api.get(f"/api/instruments/KO/position/?instrument={malformed}")
        assert answer.status_code == 400 and list(answer.json()) == ["instrument"]
    # and the schema documents the parameter
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    parameters = schema["/api/instruments/{symbol}/position/"]["get"]["parameters"]
    assert {(p["name"], p["in"], p["schema"]["type"]) for p in parameters} == {
        ("symbol", "path", "string"), ("instrument", "query", "integer")}
