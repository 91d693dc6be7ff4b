"""The watchlist page in a real browser: search, follow, see the price a real worker fetched, unfollow; two
followed instruments of one symbol told apart."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from portfolio.models import WatchlistItem
from tests.browser.test_dashboard import SCREENSHOTS, log_in
from tests.factories import InstrumentFactory, PriceFactory, UserFactory

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


def test_two_followed_instruments_of_one_symbol_are_labelled_and_linked_each_to_its_own(browser, live_server):
    # given a user following their own manual KO (closing 40, then 42) and the shared KO (62, then 60)
    user = UserFactory(username="twins")
    yesterday = timezone.localdate() - timedelta(days=1)
    manual = InstrumentFactory(symbol="KO", owner=user, provider="manual", exchange_mic="")
    shared = InstrumentFactory(symbol="KO", exchange_mic="")
    for instrument, before, close in ((manual, "40", "42"), (shared, "62", "60")):
        PriceFactory(instrument=instrument, date=yesterday - timedelta(days=1), close=before)
        PriceFactory(instrument=instrument, date=yesterday, close=close)
        WatchlistItem.objects.create(user=user, instrument=instrument)

    # when the watchlist is opened
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, "twins", "correct-horse-battery")
    page.goto(f"{live_server.url}/watchlist/")
    expect(page.locator("#watchlist")).to_have_attribute("data-loaded", "true")

    # then each KO is a row labelled by its provider, linked to its own instrument, with its own price
    for instrument, label, price in ((manual, "KO · manual", "42"), (shared, "KO · simulated", "60")):
        row = page.locator(f"[data-testid=watchlist-table] tr[data-instrument-id='{instrument.pk}']")
        expect(row.locator("a")).to_have_text(label)
        assert row.locator("a").get_attribute("href") == f"/instruments/KO/?instrument={instrument.pk}"
        expect(row.locator("[data-field=price]")).to_contain_text(price)

    # and each day change in the dashboard's colours: up for the manual KO, down for the shared one
    changes = {instrument.pk: page.locator(f"tr[data-instrument-id='{instrument.pk}'] [data-field=day_change]")
               for instrument in (manual, shared)}
    expect(changes[manual.pk]).to_have_class(re.compile(r"\bpos\b"))
    expect(changes[shared.pk]).to_have_class(re.compile(r"\bneg\b"))
    colours = {pk: cell.evaluate("el => getComputedStyle(el).color") for pk, cell in changes.items()}
    plain = page.locator(f"tr[data-instrument-id='{shared.pk}'] [data-field=price]").evaluate(
        "el => getComputedStyle(el).color")
    assert len({colours[manual.pk], colours[shared.pk], plain}) == 3, (colours, plain)

    # and the shared KO's link opens the shared KO's page and prices
    page.locator(f"tr[data-instrument-id='{shared.pk}'] a").click()
    expect(page.get_by_text("priced by Simulated")).to_be_visible()
    expect(page.locator("#price-status")).to_contain_text("Last close 60", timeout=30_000)
    assert errors == []
