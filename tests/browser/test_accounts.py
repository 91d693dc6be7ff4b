"""Accounts in a real browser, on the demo portfolio: value by account on the dashboard (adding up to the
total), the Accounts page, and a deposit recorded through the transaction form."""

from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.test_dashboard import SCREENSHOTS, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def amount(text: str) -> Decimal:
    """A figure as the page formats it (1,234.56 or −1,234.56, a currency code after it), as a Decimal."""
    return Decimal(text.split()[0].replace(",", "").replace("\u2212", "-"))


def test_value_by_account_and_the_accounts_page(browser, live_server, demo):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, demo.username, demo.password)

    # the dashboard: one row per account, cash and holdings, the totals adding up to the portfolio's value
    expect(page.locator("[data-testid=totals]")).to_have_attribute("data-loaded", "true")
    rows = page.locator("[data-testid=accounts] tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).locator("strong").inner_text() == "Brokerage"
    assert rows.nth(1).locator("strong").inner_text() == "Crypto wallet"
    assert amount(rows.nth(0).locator("[data-testid=account-cash]").inner_text()) > 0
    totals = [amount(rows.nth(i).locator("[data-testid=account-total]").inner_text()) for i in range(2)]
    total_value = amount(page.locator("[data-testid=total-value]").inner_text())
    assert abs(sum(totals) - total_value) <= Decimal("0.01")
    # the cash is a holding too, without an instrument page
    expect(page.locator("#holdings-wrap")).to_have_attribute("data-loaded", "true")
    cash_row = page.locator("[data-testid=holdings] tbody tr[data-symbol='CASH USD']")
    expect(cash_row).to_contain_text("Cash (USD)")
    assert cash_row.locator("a").count() == 0
    page.locator("[data-testid=accounts]").screenshot(path=str(SCREENSHOTS / "accounts-dashboard.png"))

    # the Accounts page: the same figures; a new account, renamed, then deleted; one with transactions kept
    page.click("[data-testid=accounts-link]")
    table = page.locator("[data-testid=accounts]")
    expect(table.locator("tbody tr")).to_have_count(2)
    assert amount(table.locator("tbody tr").nth(0).locator("[data-field=total_value]").inner_text()) == totals[0]
    page.fill("input[name=name]", "Savings")
    page.fill("input[name=platform]", "Bank")
    page.click("button:has-text('Add account')")
    expect(page.locator(".flash")).to_contain_text("Account “Savings” created.")
    expect(table.locator("tbody tr")).to_have_count(3)
    page.locator("tbody tr", has_text="Savings").locator("a:has-text('Edit')").click()
    page.fill("input[name=name]", "Emergency fund")
    page.click("button:has-text('Save')")
    expect(page.locator("[data-testid=accounts]")).to_contain_text("Emergency fund")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tbody tr", has_text="Brokerage").locator("button:has-text('Delete')").click()
    expect(page.locator(".flash.error")).to_contain_text("'Brokerage' still has")
    page.screenshot(path=str(SCREENSHOTS / "accounts.png"), full_page=True)

    # a deposit into the new account, through the transaction form: no symbol, the amount as price
    page.click("a:has-text('Transactions')")
    page.select_option("select[name=account]", label="Emergency fund · Bank")
    expect(page.locator("input[name=symbol]")).to_be_visible()
    page.select_option("select[name=type]", "DEPOSIT")
    expect(page.locator("input[name=symbol]")).to_be_hidden()  # a deposit names no instrument
    expect(page.locator("select[name=provider]")).to_be_hidden()
    page.fill("input[name=date]", timezone.localdate().isoformat())  # today's: first in the list
    page.fill("input[name=price]", "2500")
    page.click("button:has-text('Add')")
    expect(page.locator(".flash")).to_contain_text("Added deposit of 2500")
    expect(page.locator("[data-testid=transactions] tbody tr").first).to_contain_text("Emergency fund")
    page.goto(f"{live_server.url}/portfolios/{demo.portfolio_id}/accounts/")
    saved = page.locator("tbody tr", has_text="Emergency fund")
    assert amount(saved.locator("[data-field=total_value]").inner_text()) == Decimal("2500")
    assert errors == []
