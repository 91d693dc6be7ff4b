"""The Portfolios page with each portfolio's value, and an instrument's page with the user's position and
their trades marked on the price chart, in a real browser on the demo portfolio."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard import SCREENSHOTS, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_portfolio_values_and_the_position_with_trade_markers(browser, live_server, demo):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, demo.username, demo.password)

    page.click("nav >> text=Portfolios")
    row = page.locator(f"[data-testid=portfolio-table] tr[data-portfolio='{demo.portfolio_id}']")
    value = row.locator("[data-field=total_value]")
    expect(value).to_contain_text("USD")
    assert float(value.inner_text().split()[0].replace(",", "")) > 10_000

    page.goto(f"{live_server.url}/instruments/JPM/")
    position = page.locator("[data-testid=positions] tr[data-portfolio]")
    expect(position).to_have_count(1)
    assert float(position.locator("[data-field=quantity]").inner_text()) > 0
    page.click("button.range[data-days='36500']")  # the whole history: every trade on it
    chart = page.locator("#price-chart")
    expect(chart.locator("canvas")).to_be_visible()
    buys = page.locator("#instrument-trades tr[data-type=BUY]").count()
    expect(chart).to_have_attribute("data-buys", str(buys))
    sells = page.locator("#instrument-trades tr[data-type=SELL]").count()
    expect(chart).to_have_attribute("data-sells", str(sells))
    page.screenshot(path=str(SCREENSHOTS / "instrument-position.png"), full_page=True)
    assert errors == []
