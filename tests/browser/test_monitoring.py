"""/monitoring in a real browser: live numbers after a refresh job run by a real worker."""

import pytest
from django.contrib.auth import get_user_model

from tests.browser.test_dashboard import SCREENSHOTS, log_in

pytestmark = pytest.mark.django_db(transaction=True)

from playwright.sync_api import expect  # noqa: E402


def test_monitoring_shows_the_refresh_job_providers_cache_and_events(worker, browser, live_server, demo):
    get_user_model().objects.filter(username=demo.username).update(is_staff=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server.url, demo.username, demo.password)
    expect(page.locator("[data-testid=totals]")).to_have_attribute("data-loaded", "true")

    page.click("[data-testid=refresh-button]")
    expect(page.locator("[data-testid=refresh-progress]")).to_have_attribute("data-state", "SUCCESS", timeout=30_000)

    page.goto(f"{live_server.url}/monitoring/")
    expect(page.locator("#monitoring")).to_have_attribute("data-loaded", "true")
    job_row = page.locator("[data-testid=jobs-table] tbody tr").first
    expect(job_row).to_contain_text("SUCCESS")
    expect(job_row.locator("td").nth(3)).to_have_text("26")  # every demo instrument refreshed
    provider = page.locator("[data-testid=providers-table] tr[data-provider=simulated] td")
    expect(provider.nth(0)).to_have_text("simulated")
    assert int(provider.nth(1).inner_text()) >= 1  # requests in the last hour
    expect(provider.nth(7)).to_have_text("closed")
    expect(page.locator("[data-testid=cache-table] tr[data-namespace=dashboard]")).to_be_visible()
    expect(page.locator("[data-testid=events-table]")).to_contain_text("Price refresh succes")
    expect(page.locator("[data-testid=endpoints-table]")).to_contain_text("/api/dashboard-initial-data/")
    page.screenshot(path=str(SCREENSHOTS / "monitoring.png"), full_page=True)
