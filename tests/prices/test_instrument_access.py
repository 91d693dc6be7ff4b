"""Who reads and writes which prices: an instrument's stored closes are for those with a reason to read
them (a holder, a portfolio benchmarked on it, staff); a user's manual instrument is theirs alone, to
read and to price. For anyone else the instrument does not exist (404)."""

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from prices.models import Instrument
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory, UserFactory

pytestmark = pytest.mark.django_db


def api_of(username: str, *, staff: bool = False) -> APIClient:
    user = UserFactory(username=username, is_staff=staff)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.user = user
    return client


def web_of(client: APIClient) -> Client:
    web = Client()
    web.force_login(client.user)
    return web


def portfolio_of(client: APIClient, base_currency: str) -> int:
    response = client.post("/api/portfolios/", {"name": "Main", "base_currency": base_currency}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def buy(client: APIClient, portfolio_id: int, **fields) -> dict:
    body = {"type": "BUY", "date": "2024-01-02", "fee": "0", **fields}
    response = client.post(f"/api/portfolios/{portfolio_id}/transactions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def closes(client: APIClient, symbol: str) -> tuple[str, str, list[tuple[str, Decimal]]]:
    response = client.get(f"/api/instruments/{symbol}/prices/?start=2024-01-01")
    assert response.status_code == 200, response.json()
    body = response.json()
    return body["currency"], body["provider"], [(p["date"], Decimal(p["close"])) for p in body["prices"]]


def test_two_users_each_have_their_own_manual_goldbar_and_neither_sees_the_others():
    # given two users who each hold a gold bar they price by hand, in their own currency
    ann, ben = api_of("ann"), api_of("ben")
    ann_portfolio, ben_portfolio = portfolio_of(ann, "EUR"), portfolio_of(ben, "USD")
    buy(ann, ann_portfolio, symbol="GOLDBAR", provider="manual", currency="EUR", quantity="2", price="1800")
    buy(ben, ben_portfolio, symbol="goldbar", provider="manual", currency="USD", quantity="1", price="2000")

    # when each enters their own prices
    posted_by_ann = ann.post("/api/instruments/GOLDBAR/prices/", [{"date": "2024-03-01", "close": "2000"}],
                             format="json")
    posted_by_ben = ben.post("/api/instruments/GOLDBAR/prices/", [{"date": "2024-03-01", "close": "2300"},
                                                                  {"date": "2024-03-04", "close": "2310.50"}],
                             format="json")

    # then both may (they own their gold bar), and each reads only their own, in their own currency
    assert (posted_by_ann.status_code, posted_by_ann.json()) == (201, {"symbol": "GOLDBAR", "written": 1})
    assert (posted_by_ben.status_code, posted_by_ben.json()) == (201, {"symbol": "GOLDBAR", "written": 2})
    assert closes(ann, "GOLDBAR") == ("EUR", "manual", [("2024-03-01", Decimal("2000"))])
    assert closes(ben, "goldbar") == ("USD", "manual", [("2024-03-01", Decimal("2300")),
                                                        ("2024-03-04", Decimal("2310.50"))])
    # and each portfolio is valued at its owner's own price: 2 × 2000 EUR, 1 × 2310.50 USD
    assert ann.get(f"/api/dashboard-initial-data/{ann_portfolio}/").json()["total_value"] == "4000.00"
    assert ben.get(f"/api/dashboard-initial-data/{ben_portfolio}/").json()["total_value"] == "2310.50"
    assert sorted(Instrument.objects.filter(symbol="GOLDBAR").values_list("owner__username", "currency")) == [
        ("ann", "EUR"), ("ben", "USD")]


def test_a_users_manual_instrument_does_not_exist_for_others_not_even_staff():
    # given ann's own manual gold bar with a price
    ann = api_of("ann")
    buy(ann, portfolio_of(ann, "EUR"), symbol="GOLDBAR", provider="manual", currency="EUR", quantity="2",
        price="1800")
    ann.post("/api/instruments/GOLDBAR/prices/", [{"date": "2024-03-01", "close": "2000"}], format="json")
    carol, staff = api_of("carol"), api_of("root", staff=True)

    # when another user or staff ask for it, or try to price it
    # then it does not exist for them, and nothing of ann's changes
    for other in (carol, staff):
        assert other.get("/api/instruments/GOLDBAR/prices/").status_code == 404
        assert other.post("/api/instruments/GOLDBAR/prices/", [{"date": "2024-03-01", "close": "1"}],
                          format="json").status_code == 404
        assert web_of(other).get("/instruments/GOLDBAR/").status_code == 404
    assert web_of(ann).get("/instruments/GOLDBAR/").status_code == 200
    assert closes(ann, "GOLDBAR")[2] == [("2024-03-01", Decimal("2000"))]


@pytest.fixture
def spy():
    spy = InstrumentFactory(symbol="SPY", asset_class="etf")
    PriceFactory(instrument=spy, date=date(2024, 3, 1), close=Decimal("512.34"))
    return spy


def test_a_holder_reads_a_shared_instruments_prices_and_a_stranger_gets_404(spy):
    # given a holder of SPY and a user who holds nothing
    holder, stranger = api_of("holder"), api_of("stranger")
    TransactionFactory(portfolio=PortfolioFactory(owner=holder.user), instrument=spy)

    # when both ask for its prices and its page
    # then the holder gets them, the stranger is told it does not exist
    assert closes(holder, "SPY") == ("USD", "simulated", [("2024-03-01", Decimal("512.34"))])
    assert web_of(holder).get("/instruments/SPY/").status_code == 200
    assert stranger.get("/api/instruments/SPY/prices/").status_code == 404
    assert web_of(stranger).get("/instruments/SPY/").status_code == 404


def test_a_portfolio_benchmarked_on_an_instrument_reads_its_prices(spy):
    # given a user who holds nothing in SPY
    user = api_of("benchmarker")
    portfolio_id = portfolio_of(user, "USD")
    assert user.get("/api/instruments/SPY/prices/").status_code == 404

    # when she compares her portfolio with SPY
    assert user.patch(f"/api/portfolios/{portfolio_id}/", {"benchmark": "SPY"}, format="json").status_code == 200

    # then its prices are hers to read
    assert closes(user, "SPY") == ("USD", "simulated", [("2024-03-01", Decimal("512.34"))])
    assert web_of(user).get("/instruments/SPY/").status_code == 200


def test_staff_read_any_shared_instrument(spy):
    staff = api_of("root", staff=True)
    assert closes(staff, "SPY") == ("USD", "simulated", [("2024-03-01", Decimal("512.34"))])
    assert web_of(staff).get("/instruments/SPY/").status_code == 200


def test_only_the_owner_or_staff_price_an_instrument(spy):
    # given a shared manual instrument staff keep prices for, and a holder of it and of SPY
    house = InstrumentFactory(symbol="HOUSE", provider="manual", currency="EUR")
    holder, staff = api_of("holder"), api_of("root", staff=True)
    portfolio = PortfolioFactory(owner=holder.user)
    TransactionFactory(portfolio=portfolio, instrument=house)
    TransactionFactory(portfolio=portfolio, instrument=spy, date=date(2024, 1, 3))
    row = [{"date": "2024-03-01", "close": "350000"}]

    # when the holder tries to price them, then she may not (she reads them, she does not write them)
    assert holder.post("/api/instruments/HOUSE/prices/", row, format="json").status_code == 403
    assert holder.post("/api/instruments/SPY/prices/", row, format="json").status_code == 403
    # when staff price the shared manual one, then the holder reads it
    assert staff.post("/api/instruments/HOUSE/prices/", row, format="json").status_code == 201
    assert closes(holder, "HOUSE") == ("EUR", "manual", [("2024-03-01", Decimal("350000"))])
