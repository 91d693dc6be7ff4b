"""Instrument prices API: stored closes for holders and staff, manual prices by the instrument's owner
or staff (who may read and write what: tests/prices/test_instrument_access.py)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.cache import portfolio_version_get
from prices.models import PriceHistory
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_api(db) -> APIClient:
    staff = UserFactory(username="staff", is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    return client


@pytest.fixture
def house():
    return InstrumentFactory(symbol="HOUSE", provider="manual", currency="EUR", exchange_mic="")


def test_staff_post_manual_prices_and_holders_read_them(staff_api, api, house, portfolio,
                                                          django_capture_on_commit_callbacks):
    TransactionFactory(portfolio=portfolio, instrument=house)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_api.post("/api/instruments/house/prices/",
                                  [{"date": "2024-01-31", "close": "350000"},
                                   {"date": "2024-02-29", "close": "352500.50"}],
                                  format="json")
    assert response.status_code == 201
    assert response.json() == {"symbol": "HOUSE", "written": 2}
    assert portfolio_version_get(portfolio_id=portfolio.pk) == 1  # the holder's cached reads are obsolete

    body = api.get("/api/instruments/HOUSE/prices/?start=2024-01-01&end=2024-12-31").json()
    assert body["symbol"] == "HOUSE" and body["currency"] == "EUR" and body["provider"] == "manual"
    assert [(p["date"], Decimal(p["close"]), p["source"]) for p in body["prices"]] == [
        ("2024-01-31", Decimal("350000"), "manual"), ("2024-02-29", Decimal("352500.50"), "manual")]
    assert body["stale"] is True  # 2024 is long gone


def test_non_staff_cannot_post_prices_of_a_shared_instrument(api, house, portfolio):
    # a stranger to it is told it does not exist; a holder that she may not
    response = api.post("/api/instruments/HOUSE/prices/", [{"date": "2024-01-31", "close": "1"}], format="json")
    assert response.status_code == 404
    TransactionFactory(portfolio=portfolio, instrument=house)
    response = api.post("/api/instruments/HOUSE/prices/", [{"date": "2024-01-31", "close": "1"}], format="json")
    assert response.status_code == 403
    assert not PriceHistory.objects.exists()


def test_anonymous_cannot_read_prices(house):
    assert APIClient().get("/api/instruments/HOUSE/prices/").status_code == 401


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"date": "2024-01-31", "close": "-5"}], "row 0"),
        ([{"date": "2024-01-31", "close": "1"}, {"date": (date.today() + timedelta(days=3)).isoformat(),
                                                 "close": "1"}], "row 1"),
        ([{"date": "31/01/2024", "close": "1"}], None),
        ([{"date": "2024-01-31"}], None),
    ],
)
def test_bad_manual_prices_are_rejected_whole(staff_api, house, rows, field):
    response = staff_api.post("/api/instruments/HOUSE/prices/", rows, format="json")
    assert response.status_code == 400
    if field:
        assert field in response.json()
    assert not PriceHistory.objects.exists()


def test_prices_of_a_provider_priced_instrument_are_not_entered_by_hand(staff_api):
    InstrumentFactory(symbol="AAPL", provider="yahoo")
    response = staff_api.post("/api/instruments/AAPL/prices/", [{"date": "2024-01-31", "close": "1"}], format="json")
    assert response.status_code == 400
    assert "only manual instruments" in response.json()["symbol"][0]


def test_unknown_instrument_is_404(api, staff_api):
    assert api.get("/api/instruments/NOPE/prices/").status_code == 404
    assert staff_api.post("/api/instruments/NOPE/prices/", [], format="json").status_code == 404


def test_range_defaults_and_validation(api, portfolio):
    instrument = InstrumentFactory(symbol="SPY")
    TransactionFactory(portfolio=portfolio, instrument=instrument)
    today = date.today()
    PriceFactory(instrument=instrument, date=today - timedelta(days=400), close=Decimal("1"))
    PriceFactory(instrument=instrument, date=today - timedelta(days=10), close=Decimal("2"))
    body = api.get("/api/instruments/SPY/prices/").json()
    assert [Decimal(p["close"]) for p in body["prices"]] == [Decimal("2")]  # a year by default
    bad = api.get("/api/instruments/SPY/prices/?start=2024-02-01&end=2024-01-01")
    assert bad.status_code == 400 and "start" in bad.json()
    assert api.get("/api/instruments/SPY/prices/?start=yesterday").json().keys() == {"start"}


def test_staff_with_a_manual_house_of_their_own_price_the_shared_one_by_its_id(staff_api, house):
    # given staff keep the shared manual HOUSE and have a manual HOUSE of their own: the symbol names theirs
    mine = InstrumentFactory(symbol="HOUSE", provider="manual", owner=User.objects.get(username="staff"),
                             exchange_mic="")
    rows = [{"date": "2024-01-31", "close": "350000"}]

    # when they post prices with ?instrument=<the shared one's id>, and then without it
    shared = staff_api.post(f"/api/instruments/HOUSE/prices/?instrument={house.pk}", rows, format="json")
    own = staff_api.post("/api/instruments/HOUSE/prices/", [{"date": "2024-01-31", "close": "7"}], format="json")

    # then each went to its own instrument
    assert (shared.status_code, own.status_code) == (201, 201)
    assert sorted(PriceHistory.objects.values_list("instrument_id", "close")) == sorted(
        [(house.pk, Decimal("350000")), (mine.pk, Decimal("7"))])
    # an id the symbol does not name is a 404, a malformed one a 400 naming the field; nothing written
    other = InstrumentFactory(symbol="PEP", provider="manual")
    assert staff_api.post(f"/api/instruments/HOUSE/prices/?instrument={other.pk}", rows,
                          format="json").status_code == 404
    malformed = staff_api.post("/api/instruments/HOUSE/prices/?instrument=x", rows, format="json")
    assert malformed.status_code == 400 and list(malformed.json()) == ["instrument"]
    assert PriceHistory.objects.count() == 2


def test_prices_up_to_a_day_in_year_one_start_at_the_first_day_there_is(api, house, portfolio):
    TransactionFactory(portfolio=portfolio, instrument=house)  # a holder reads its prices
    response = api.get("/api/instruments/HOUSE/prices/?end=0001-06-01")
    assert response.status_code == 200 and response.json()["prices"] == []
