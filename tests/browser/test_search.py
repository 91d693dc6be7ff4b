"""Instrument search in the trade form, in a real browser: known instruments at once, the providers'
answers (loopback Yahoo and CoinGecko, fetched by a real worker) appended, a pick fills the form."""

import pytest
from playwright.sync_api import expect

from portfolio.models import WatchlistItem
from prices.models import Instrument
from tests.browser.test_dashboard import SCREENSHOTS, log_in
from tests.factories import InstrumentFactory, PortfolioFactory, UserFactory
from tests.prices.providers.test_search import CG_SEARCH, YAHOO_SEARCH
from tests.prices.test_search import providers  # noqa: F401 (fixture)
from tests.stubs import json_response

pytestmark = pytest.mark.django_db(transaction=True)


def test_typing_a_name_finds_the_coin_and_a_pick_fills_the_trade(worker, browser, live_server, providers):  # noqa: F811
    providers.route("/v1/finance/search", json_response(YAHOO_SEARCH))
    providers.route("/api/v3/search", json_response(CG_SEARCH))
    user = UserFactory(username="searcher")
    portfolio = PortfolioFactory(owner=user, name="Main", base_currency="EUR")
    # one they follow: known to them, so it is listed first
    WatchlistItem.objects.create(user=user, instrument=InstrumentFactory(
        symbol="BITW", name="Bitwise 10 Crypto Index Fund", provider="yahoo"))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, "searcher", "correct-horse-battery")
    page.goto(f"{live_server.url}/portfolios/{portfolio.pk}/transactions/")

    page.fill("input[name=symbol]", "bit")
    results = page.locator(".search-results li")
    expect(results.first).to_have_attribute("data-symbol", "BITW")  # known instruments first
    expect(page.locator(".search-results li[data-symbol=BTC]")).to_be_visible(timeout=15_000)  # then CoinGecko's
    page.screenshot(path=str(SCREENSHOTS / "instrument-search.png"), full_page=True)
    page.click(".search-results li[data-symbol=BTC]")

    assert page.input_value("input[name=symbol]") == "BTC"
    assert page.input_value("input[name=currency]") == "USD"
    assert page.input_value("select[name=provider]") == "coingecko"
    assert page.input_value("select[name=asset_class]") == "crypto"
    page.fill("input[name=date]", "2024-03-01")
    page.fill("input[name=quantity]", "0.25")
    page.fill("input[name=price]", "60000")
    page.click("form.grid-form button[type=submit]")
    expect(page.locator(".flash.success")).to_contain_text("Added buy of BTC")
    assert Instrument.objects.get(symbol="BTC").name == "Bitcoin"  # the pick named the new instrument

    # a listing abroad comes with its currency
    page.fill("input[name=symbol]", "BALN.SW")
    expect(page.locator(".search-results li[data-symbol='BALN.SW']")).to_be_visible(timeout=15_000)
    page.click(".search-results li[data-symbol='BALN.SW']")
    assert page.input_value("input[name=currency]") == "CHF"
    assert errors == []
