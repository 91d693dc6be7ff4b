"""The watchlist page in a real browser: search, follow, see the price a real worker fetched, unfollow."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_dashboard import SCREENSHOTS, log_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_follow_from_the_search_see_the_price_and_unfollow(worker, browser, live_server, settings):
    UserFactory(username="watcher")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, "watcher", "correct-horse-battery")
    page.click("text=Watchlist")
    expect(page.locator("#watchlist")).to_have_attribute("data-loaded", "true")

    page.fill("[data-testid=watch-symbol]", "micro")  # the simulated provider's universe, by name
    page.click(".search-results li[data-symbol=MSFT]")
    page.click("#watch-form button[type=submit]")
    row = page.locator("[data-testid=watchlist-table] tr[data-symbol=MSFT]")
    expect(row).to_be_visible()
    # the worker fetches its closes; the page shows them when reloaded
    for _ in range(30):
        page.reload()
        if "USD" in row.locator("[data-field=price]").inner_text():
            break
        page.wait_for_timeout(500)
    expect(row.locator("[data-field=price]")).to_contain_text("USD")
    expect(row.locator("[data-field=day_change]")).not_to_have_text("—")
    expect(row).to_contain_text("Microsoft Corporation")  # the pick names the new instrument
    page.screenshot(path=str(SCREENSHOTS / "watchlist.png"), full_page=True)

    # an unknown ticker is refused with its reason
    page.fill("[data-testid=watch-symbol]", "ZZNOPE")
    page.click("#watch-form button[type=submit]")
    expect(page.locator("#watch-error")).to_contain_text("ZZNOPE is not an instrument simulated knows")

    row.locator("button", has_text="Unfollow").click()
    expect(row).to_have_count(0)
    assert errors == []
