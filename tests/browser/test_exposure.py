"""Sector, country and region donuts on the dashboard, in a real browser, on the demo portfolio (its
instruments' profiles fetched by a real worker from the offline simulated provider)."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard import SCREENSHOTS, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_donuts_fill_in_once_the_workers_fetched_the_profiles(worker, browser, live_server, demo):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, demo.username, demo.password)

    exposure = page.locator("#exposure")
    expect(exposure).to_have_attribute("data-loaded", "true")
    expect(exposure).to_have_attribute("data-pending", "0", timeout=30_000)
    sectors = page.locator("[data-dimension=by_sector] .donut-legend li")
    names = sectors.evaluate_all("items => items.map((i) => i.dataset.name)")
    assert {"Technology", "ETF", "Crypto"} <= set(names)
    assert page.locator("[data-dimension=by_sector] circle").count() == len(names)
    countries = page.locator("[data-dimension=by_country] .donut-legend li").evaluate_all(
        "items => items.map((i) => i.dataset.name)")
    assert countries[0] == "United States"
    regions = page.locator("[data-dimension=by_region] .donut-legend li").evaluate_all(
        "items => items.map((i) => i.dataset.name)")
    assert {"North America", "Asia Pacific", "Europe", "Crypto"} <= set(regions)
    exposure.screenshot(path=str(SCREENSHOTS / "allocation-donuts.png"))
    assert errors == []
