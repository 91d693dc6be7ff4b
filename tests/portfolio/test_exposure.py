"""Allocation by sector, country and region through the API: profiles fetched by a real worker from a
loopback Yahoo (quoteSummary), "unknown" its own slice, ETFs one sector unless broken down, admin edits kept."""

import time
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from portfolio.exposure import _slices
from prices.models import InstrumentProfile
from prices.profiles import instrument_profiles_refresh
from tests.factories import InstrumentFactory, PortfolioFactory, TransactionFactory
from tests.prices.providers.test_profiles import TD_PLAN, YAHOO_AAPL, YAHOO_NOT_FOUND, YAHOO_SPY
from tests.prices.test_search import providers  # noqa: F401 (fixture)
from tests.stubs import html_response, json_response, text_response

pytestmark = pytest.mark.django_db(transaction=True)
YAHOO_VXUS = ('{"quoteSummary":{"result":[{"price":{"currency":"USD","quoteType":"ETF"},'
              '"topHoldings":{"sectorWeightings":[]}}],"error":null}}')


def holding(portfolio, symbol: str, asset_class: str, value: str, provider: str = "yahoo"):
    instrument = InstrumentFactory(symbol=symbol, provider=provider, asset_class=asset_class)
    TransactionFactory(portfolio=portfolio, instrument=instrument, quantity=Decimal("1"), price=Decimal(value))
    return instrument


def slices(body: dict, key: str) -> dict[str, str]:
    return {row["name"]: row["value"] for row in body[key]}


def test_sector_country_and_region_from_profiles_the_workers_fetch(worker, providers, api, portfolio):  # noqa: F811
    providers.route("/v1/test/getcrumb", text_response("crumb-1"))
    providers.route("/v10/finance/quoteSummary/AAPL", json_response(YAHOO_AAPL))
    providers.route("/v10/finance/quoteSummary/SPY", json_response(YAHOO_SPY))
    providers.route("/v10/finance/quoteSummary/VXUS", json_response(YAHOO_VXUS))
    providers.route("/v10/finance/quoteSummary/ZZQQ", json_response(YAHOO_NOT_FOUND, status=404))
    holding(portfolio, "AAPL", "stock", "1000")
    holding(portfolio, "SPY", "etf", "2000")
    holding(portfolio, "VXUS", "etf", "500")
    holding(portfolio, "ZZQQ", "stock", "300")
    holding(portfolio, "BTC", "crypto", "200", provider="coingecko")

    first = api.get(f"/api/portfolios/{portfolio.pk}/allocation/").json()
    assert first["profiles_pending"] == ["AAPL", "SPY", "VXUS", "ZZQQ"]
    assert slices(first, "by_sector") == {"ETF": "2500.00", "Crypto": "200.00", "unknown": "1300.00"}

    deadline = time.monotonic() + 20
    while (body := api.get(f"/api/portfolios/{portfolio.pk}/allocation/").json())["profiles_pending"]:
        assert time.monotonic() < deadline, body
        time.sleep(0.1)

    # SPY spread by its weights (the 42.22 % they leave out is unknown, with ZZQQ), VXUS one "ETF" sector
    assert slices(body, "by_sector") == {
        "Technology": "1642.60", "ETF": "500.00", "Financial Services": "260.20", "Consumer Cyclical": "207.00",
        "Crypto": "200.00", "Real Estate": "45.80", "unknown": "1144.40"}
    assert body["by_sector"][-1]["name"] == "unknown"  # its own slice, last
    assert slices(body, "by_country") == {"United States": "1000.00", "Crypto": "200.00", "unknown": "2800.00"}
    assert slices(body, "by_region") == {"North America": "1000.00", "Crypto": "200.00", "unknown": "2800.00"}
    assert body["by_country"][0]["weight"] == "0.2500" and body["total_value"] == "4000.00"
    unknown = InstrumentProfile.objects.get(instrument__symbol="ZZQQ")
    assert (unknown.sector, unknown.fetched_at is not None) == ("", True)  # asked once, not every page view
    assert len(providers.requests_to("/v10/finance/quoteSummary/AAPL")) == 1


def test_a_failing_provider_leaves_no_profile_and_is_asked_again(providers, portfolio):  # noqa: F811
    providers.route("/v1/test/getcrumb", text_response("crumb-1"))
    providers.route("/v10/finance/quoteSummary/AAPL", html_response(status=503), json_response(YAHOO_AAPL))
    instrument = holding(portfolio, "AAPL", "stock", "1000")
    counts = instrument_profiles_refresh(instrument_ids=[instrument.pk])
    assert counts == {"stored": 1, "unknown": 0, "refused": 0, "failed": 0}  # retried by the gateway
    assert InstrumentProfile.objects.get(instrument=instrument).country == "United States"


def test_staff_edit_a_profile_in_the_admin_and_the_workers_keep_it(providers, api, portfolio):  # noqa: F811
    providers.route("/v1/test/getcrumb", text_response("crumb-1"))
    providers.route("/v10/finance/quoteSummary/VXUS", json_response(YAHOO_VXUS))
    instrument = holding(portfolio, "VXUS", "etf", "1000")
    staff = get_user_model().objects.create_superuser("ops", password="x")
    admin = APIClient()
    admin.force_login(staff)
    form = {"symbol": "VXUS", "name": "Vanguard Total International", "asset_class": "etf", "currency": "USD",
            "exchange_mic": "XNYS", "provider": "yahoo", "provider_symbol": "", "active": "on",
            "verification_status": "verified", "owner": "",
            "profile-TOTAL_FORMS": "1", "profile-INITIAL_FORMS": "0", "profile-MIN_NUM_FORMS": "0",
            "profile-MAX_NUM_FORMS": "1", "profile-0-instrument": str(instrument.pk),
            "profile-0-sector": "", "profile-0-industry": "", "profile-0-country": "",
            "profile-0-sector_weights": '{"Financial Services": 0.25, "Industrials": 0.15}',
            "profile-0-country_weights": '{"Japan": 0.5, "United Kingdom": 0.3}'}

    response = admin.post(f"/admin/prices/instrument/{instrument.pk}/change/", form)

    assert response.status_code == 302, response.content[:2000]
    profile = InstrumentProfile.objects.get(instrument=instrument)
    assert (profile.locked, profile.source) == (True, "admin")
    assert instrument_profiles_refresh(instrument_ids=[instrument.pk])["stored"] == 0  # not fetched over it
    assert providers.requests_to("/v10/finance/quoteSummary/VXUS") == []
    body = api.get(f"/api/portfolios/{portfolio.pk}/allocation/").json()
    assert slices(body, "by_sector") == {"Financial Services": "250.00", "Industrials": "150.00", "unknown": "600.00"}
    assert slices(body, "by_region") == {"Asia Pacific": "500.00", "Europe": "300.00", "unknown": "200.00"}


def test_another_users_portfolio_and_the_schema(api, other_user):
    foreign = PortfolioFactory(owner=other_user)
    assert api.get(f"/api/portfolios/{foreign.pk}/allocation/").status_code == 404
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/portfolios/{portfolio_id}/allocation/" in schema["paths"]


def test_a_plan_without_profiles_is_not_asked_daily(providers, api, portfolio, settings):  # noqa: F811
    settings.PRICE_PROVIDER = "twelvedata"
    providers.route("/profile", json_response(TD_PLAN))
    instrument = holding(portfolio, "AAPL", "stock", "1000", provider="twelvedata")

    assert instrument_profiles_refresh(instrument_ids=[instrument.pk])["refused"] == 1
    assert instrument_profiles_refresh(instrument_ids=[instrument.pk]) == {
        "stored": 0, "unknown": 0, "refused": 0, "failed": 0}
    assert len(providers.requests_to("/profile")) == 1  # a permanent refusal: never retried
    body = api.get(f"/api/portfolios/{portfolio.pk}/allocation/").json()
    assert (body["profiles_pending"], slices(body, "by_sector")) == ([], {"unknown": "1000.00"})


def test_slices_weights_make_a_whole_and_unknown_comes_last():
    hundred = Decimal("100")
    thirds = _slices({"Technology": hundred, "unknown": hundred, "Energy": hundred}, 3 * hundred)
    assert [(s["name"], s["weight"]) for s in thirds] == [
        ("Energy", "0.3334"), ("Technology", "0.3333"), ("unknown", "0.3333")]  # not 3 × 0.3333
    assert sum(Decimal(s["weight"]) for s in thirds) == 1
