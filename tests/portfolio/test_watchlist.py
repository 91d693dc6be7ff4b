"""The watchlist through the API: followed instruments get their closes from a real worker (loopback
Yahoo), are priced by the refresh jobs, show the latest price and day change; others' items answer 404."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from portfolio.models import WatchlistItem
from prices.models import Instrument, PriceHistory
from prices.needs import instrument_needs_get
from prices.providers.base import Quote
from prices.quote_cache import quotes_cache_set
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory
from tests.portfolio.test_history import providers, stock_price, wait_for  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(api: APIClient) -> APIClient:
    """The suite's token-authenticated client (`user`), by the name these tests read best with."""
    return api


def test_a_followed_instrument_gets_its_closes_and_shows_its_day_change(providers, client):  # noqa: F811
    response = client.post("/api/watchlist/", {"symbol": "msft"}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["symbol"], response.json()["price"]) == ("MSFT", None)  # nothing fetched yet
    msft = Instrument.objects.get(symbol="MSFT")
    assert (msft.provider, msft.owner_id) == ("yahoo", None)

    rows = wait_for("the closes fetched by the worker", lambda: (
        body if (body := client.get("/api/watchlist/").json()["results"])[0]["price"] else None))

    closes = list(PriceHistory.objects.filter(instrument=msft).order_by("-date")[:2])
    (row,) = rows
    assert closes[0].date >= timezone.localdate() - timedelta(days=5)
    assert (row["price"], row["previous_close"]) == (str(closes[0].close), str(closes[1].close))
    assert row["day_change"] == str(closes[0].close - closes[1].close)
    assert closes[0].close == stock_price("MSFT", closes[0].date)
    assert PriceHistory.objects.filter(instrument=msft).count() > 240  # a year for its chart
    # the refresh jobs price it: a user's own refresh takes their watched instruments
    job = client.post("/api/prices/refresh/").json()
    done = wait_for("the refresh", lambda: (b := client.get(job["progress_url"]).json())["state"] == "SUCCESS" and b)
    assert done["total"] + done["skipped"] == 1
    # and it can be read like a held instrument
    assert client.get("/api/instruments/MSFT/prices/").status_code == 200

    again = client.post("/api/watchlist/", {"symbol": "MSFT"}, format="json")
    assert again.status_code == 200 and WatchlistItem.objects.count() == 1  # following twice: one item


def test_the_needs_registry_and_user_refresh_include_watched_instruments(client, user):
    held = InstrumentFactory(symbol="KO")
    watched = InstrumentFactory(symbol="PEP")
    TransactionFactory(portfolio__owner=user, instrument=held)
    assert client.post("/api/watchlist/", {"symbol": "PEP"}, format="json").status_code == 201
    needs = instrument_needs_get()
    assert set(needs) == {held.pk, watched.pk}
    assert needs[watched.pk] == timezone.localdate() - timedelta(days=365)


def test_day_change_from_the_stored_closes(client):
    instrument = InstrumentFactory(symbol="VOD.L", currency="GBp", exchange_mic="XLON")
    today = timezone.localdate()
    PriceFactory(instrument=instrument, date=today - timedelta(days=2), close="80.00")
    PriceFactory(instrument=instrument, date=today - timedelta(days=1), close="82.00")
    client.post("/api/watchlist/", {"symbol": "VOD.L"}, format="json")
    (row,) = client.get("/api/watchlist/").json()["results"]
    assert (row["price"], row["currency"], row["day_change"], row["day_change_percent"]) == (
        "82.000000", "GBp", "2.000000", "2.50")


def test_two_followed_instruments_of_one_symbol_each_show_their_own_price(client, user):
    # given the user follows their own manual KO (closing 40 and 42) and the shared KO, which the refresh has
    # just quoted at 60 (previous close 50)
    today = timezone.localdate()
    manual = InstrumentFactory(symbol="KO", owner=user, provider="manual", exchange_mic="")
    shared = InstrumentFactory(symbol="KO", exchange_mic="")
    PriceFactory(instrument=manual, date=today - timedelta(days=2), close="40")
    PriceFactory(instrument=manual, date=today - timedelta(days=1), close="42")
    quotes_cache_set(quotes={shared: Quote(symbol="KO", price=Decimal("60"), previous_close=Decimal("50"),
                                           as_of=timezone.now())}, now=timezone.now())
    for instrument in (manual, shared):
        WatchlistItem.objects.create(user=user, instrument=instrument)

    # when the watchlist is read
    rows = client.get("/api/watchlist/").json()["results"]

    # then each row names its instrument and shows its own price: the quote cached for the symbol is the
    # shared KO's, not the manual one's
    assert sorted((r["instrument_id"], r["provider"], r["price"], r["day_change"]) for r in rows) == [
        (manual.pk, "manual", "42.000000", "2.000000"), (shared.pk, "simulated", "60", "10")]


def test_bad_input_names_the_field_and_others_items_answer_404(client, other_user):
    assert list(client.post("/api/watchlist/", {"symbol": "no spaces"}, format="json").json()) == ["symbol"]
    assert list(client.post("/api/watchlist/", {}, format="json").json()) == ["symbol"]
    bad_currency = client.post("/api/watchlist/", {"symbol": "AAPL", "currency": "XX1"}, format="json")
    assert bad_currency.status_code == 400 and list(bad_currency.json()) == ["currency"]
    assert client.post("/api/watchlist/", {"symbol": "ZZTOP"}, format="json").status_code == 400  # unknown
    assert not WatchlistItem.objects.exists()
    theirs = WatchlistItem.objects.create(user=other_user, instrument=InstrumentFactory(symbol="NFLX"))
    assert client.delete(f"/api/watchlist/{theirs.pk}/").status_code == 404
    assert client.get("/api/watchlist/").json()["results"] == []
    assert WatchlistItem.objects.filter(pk=theirs.pk).exists()
    mine = client.post("/api/watchlist/", {"symbol": "NFLX"}, format="json").json()
    assert client.delete(f"/api/watchlist/{mine['id']}/").status_code == 204
    assert APIClient().get("/api/watchlist/").status_code in (401, 403)


def test_the_schema_has_the_watchlist(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert {"/api/watchlist/", "/api/watchlist/{item_id}/"} <= set(paths)


def test_watchlist_day_change_of_a_coin_whose_quote_has_no_previous_close(api, user):
    # given BTC (CoinGecko: its quotes state no previous close) closing 100 yesterday and 110 today, today's close
    # stored by the refresh from the quote it also cached
    today = timezone.localdate()
    btc = InstrumentFactory(symbol="BTC", provider="coingecko", asset_class="crypto", exchange_mic="")
    PriceFactory(instrument=btc, date=today - timedelta(days=1), close="100")
    PriceFactory(instrument=btc, date=today, close="110")
    quotes_cache_set(quotes={btc: Quote(symbol="bitcoin", price=Decimal("110"), as_of=timezone.now(),
                                        currency="USD")}, now=timezone.now())
    WatchlistItem.objects.create(user=user, instrument=btc)

    (row,) = api.get("/api/watchlist/").json()["results"]

    # then two closes are known: the day change is against yesterday's (docs/api.md, Watchlist)
    assert row["previous_close"] is not None and row["day_change"] is not None, row  # observed both null
