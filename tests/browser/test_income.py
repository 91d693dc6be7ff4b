"""The income page in a real browser, on the demo portfolio (quarterly dividends over three years)."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard import SCREENSHOTS, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_income_by_month_and_year_with_yield_on_cost(browser, live_server, demo):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, demo.username, demo.password)
    page.click("[data-testid=income-link]")

    expect(page.locator("#income")).to_have_attribute("data-loaded", "true")
    expect(page.locator("[data-field=ttm]")).to_contain_text("USD")
    expect(page.locator("[data-field=yield_on_cost]")).to_contain_text("%")
    months = page.locator("#income-chart .column")
    assert months.count() >= 24  # three years of months, the ones without payments included
    assert page.locator("[data-testid=income-holdings] tbody tr[data-symbol=JPM]").count() == 1
    assert page.locator("[data-testid=income-years] tbody tr").count() >= 3
    page.screenshot(path=str(SCREENSHOTS / "income.png"), full_page=True)

    page.click("button.range[data-view=year]")
    assert 3 <= months.count() <= 4
    assert errors == []
