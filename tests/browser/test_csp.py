"""The Content-Security-Policy in a real browser: every page works under it and the browser reports no
violation — the dashboard and instrument charts (uPlot), the confirm-before-delete forms, the portfolio
switcher, /monitoring, Swagger UI at /api/docs/ and the admin."""

import pytest
from django.contrib.auth import get_user_model

from portfolio.demo import DEMO_PORTFOLIO_NAME
from portfolio.models import Portfolio, Transaction
from tests.browser.test_dashboard import log_in
from tests.factories import PortfolioFactory

pytestmark = pytest.mark.django_db(transaction=True)

from playwright.sync_api import Page, expect  # noqa: E402

# Records what the browser refused, as the page's own scripts would see it.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const where = `${event.sourceFile}:${event.lineNumber}`;
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} at ${where}`);
});
"""


def violations(page: Page) -> list[str]:
    return page.evaluate("() => window.__cspViolations")


def test_every_page_works_under_the_content_security_policy(worker, browser, live_server, demo):
    get_user_model().objects.filter(username=demo.username).update(is_staff=True, is_superuser=True)
    spare = PortfolioFactory(owner=get_user_model().objects.get(username=demo.username), name="Spare")
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: console.append(f"page error: {error}"))
    seen: dict[str, list[str]] = {}

    def check(name: str) -> None:
        seen[name] = violations(page)

    log_in(page, live_server.url, demo.username, demo.password)
    policy = page.evaluate("async () => (await fetch('/')).headers.get('Content-Security-Policy')")
    assert "script-src 'self'" in policy and "style-src 'self'" in policy

    # the dashboard: scripts, charts, allocation bars (widths set as style properties)
    expect(page.locator("#chart canvas")).to_be_visible(timeout=30_000)
    # the largest allocation bar is drawn as wide as its share of the track
    share = float(page.locator("#allocation-class .bar-value").first.inner_text().rstrip(" %"))
    fill, track = page.locator("#allocation-class .bar-row").first.evaluate(
        "row => ['.bar-fill', '.bar-track'].map((s) => row.querySelector(s).getBoundingClientRect().width)")
    assert share > 0 and fill == pytest.approx(track * share / 100, abs=1.5)
    check("dashboard")
    # the portfolio switcher submits itself (no inline onchange)
    page.select_option("[data-testid=portfolio-switcher]", str(spare.pk))
    expect(page.locator("h1")).to_have_text("Spare")
    check("dashboard, switched")

    symbol = Transaction.objects.filter(portfolio__name=DEMO_PORTFOLIO_NAME, instrument__isnull=False).values_list(
        "instrument__symbol", flat=True).first()  # not a deposit: it names no instrument
    page.goto(f"{live_server.url}/instruments/{symbol}/")
    expect(page.locator("#price-chart canvas")).to_be_visible(timeout=30_000)
    check("instrument")

    # confirm before delete (no inline onsubmit): dismissed keeps the portfolio, accepted deletes it
    page.goto(f"{live_server.url}/portfolios/")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("tr", has_text="Spare").get_by_role("button", name="Delete").click()
    expect(page.locator("tr", has_text="Spare")).to_be_visible()
    assert asked == ["Delete Spare and all its transactions?"]
    assert Portfolio.objects.filter(pk=spare.pk).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="Spare").get_by_role("button", name="Delete").click()
    expect(page.locator("tr", has_text="Spare")).to_have_count(0)
    assert not Portfolio.objects.filter(pk=spare.pk).exists()
    check("portfolio list")

    page.goto(f"{live_server.url}/monitoring/")
    expect(page.locator("#monitoring")).to_have_attribute("data-loaded", "true")
    check("monitoring")

    # Swagger UI: its start-up script is a file, its styles are files; the whole schema is drawn
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Folio API", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() >= 25
    page.locator(".swagger-ui .opblock-summary").first.click()
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    check("api docs")

    page.goto(f"{live_server.url}/admin/portfolio/transaction/")
    expect(page.locator("#result_list")).to_be_visible()
    page.locator("#action-toggle").check()  # the admin's own scripts run
    expect(page.locator(".action-counter")).to_contain_text("selected")
    check("admin")

    assert {name: found for name, found in seen.items() if found} == {}
    assert [text for text in console if "Content Security Policy" in text or "Refused to" in text] == []
    assert [text for text in console if text.startswith("page error")] == []

