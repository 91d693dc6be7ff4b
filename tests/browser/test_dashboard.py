"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright, against a live
server, a real worker, Postgres and Redis. Screenshots land in var/screenshots/."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from playwright.sync_api import Page, expect
from rest_framework.test import APIClient

from charts.cache import chart_data_store, chart_progress_get
from portfolio.models import Portfolio
from prices.models import Instrument
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory, UserFactory
from tests.portfolio.test_history import buy, current_chart, wait_for, weekday_before

SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_the_dashboard_fills_itself_in_and_refreshes(worker, browser, live_server, demo):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(page, live_server.url, demo.username, demo.password)

    # the shell first, then totals, holdings and the chart as each is ready
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("[data-testid=totals]")).to_have_attribute("data-loaded", "true")
    expect(page.locator("[data-testid=total-value]")).to_contain_text("USD")
    expect(page.locator("#holdings-wrap")).to_have_attribute("data-loaded", "true")
    assert page.locator("[data-testid=holdings] tbody tr").count() >= 20
    expect(page.locator("#chart canvas")).to_be_visible(timeout=30_000)
    expect(page.locator("#chart")).to_have_attribute("data-range", "1Y")
    loaded = page.evaluate("""() => ['[data-testid=totals]', '#holdings-wrap', '#chart']
        .map((s) => Number(document.querySelector(s).dataset.loadedAt))""")
    assert loaded[0] <= loaded[1] <= loaded[2]
    year_points = int(page.locator("#chart").get_attribute("data-points"))
    assert 360 <= year_points <= 367
    expect(page.locator("#allocation-class .bar-row").first).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

    # a range button redraws the chart with that range
    page.click("button.range[data-range='1M']")
    expect(page.locator("#chart")).to_have_attribute("data-range", "1M")
    assert 28 <= int(page.locator("#chart").get_attribute("data-points")) <= 32

    # returns for a period, then a benchmark picked on the page and drawn against the portfolio
    expect(page.locator("#performance-figures")).to_have_attribute("data-loaded", "true", timeout=30_000)
    expect(page.locator("[data-perf=time_weighted_return]")).to_contain_text("%")
    page.select_option("[data-testid=performance-range]", "YTD")
    expect(page.locator("#performance-figures")).to_have_attribute("data-range", "YTD")
    page.fill("[data-testid=benchmark-input]", "spy")
    page.click("#benchmark-form button")
    expect(page.locator("#benchmark-chart")).to_have_attribute("data-symbol", "SPY", timeout=30_000)
    expect(page.locator("#benchmark-chart canvas")).to_be_visible()

    # sorting the holdings by symbol
    page.click("th[data-sort=symbol]")
    symbols = page.locator("[data-testid=holdings] tbody tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.symbol)")
    assert symbols == sorted(symbols, reverse=True) or symbols == sorted(symbols)

    # the refresh button starts a job, shows its progress, and ends with the numbers reloaded
    page.click("[data-testid=refresh-button]")
    progress = page.locator("[data-testid=refresh-progress]")
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("data-state", "SUCCESS", timeout=30_000)
    expect(progress).to_contain_text("Prices refreshed")
    expect(page.locator("[data-testid=refresh-button]")).to_be_enabled()
    assert errors == []


def test_phone_width_and_the_empty_state(worker, browser, live_server, demo, django_user_model):
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    log_in(page, live_server.url, demo.username, demo.password)
    expect(page.locator("#chart canvas")).to_be_visible(timeout=30_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing forces sideways scrolling of the page (tables scroll in their box)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)

    django_user_model.objects.create_user("newbie", password="pw-newbie-1")
    fresh = browser.new_page()
    log_in(fresh, live_server.url, "newbie", "pw-newbie-1")
    expect(fresh.get_by_text("Welcome to Folio")).to_be_visible()
    fresh.fill("input[name=name]", "First")
    fresh.click("text=Create portfolio")
    expect(fresh.get_by_text("Add a transaction")).to_be_visible()
    fresh.goto(f"{live_server.url}/")
    expect(fresh.locator("[data-testid=empty-banner]")).to_contain_text("Add your first transaction")


def test_two_holdings_of_one_symbol_have_allocation_bars_and_table_rows_told_apart(worker, browser, live_server,
                                                                                   demo):
    # given the demo's shared KO and, beside it, the user's own manual KO (worth more: both among the bars)
    api = APIClient()
    api.force_authenticate(get_user_model().objects.get(username=demo.username))
    traded = weekday_before(timezone.localdate() - timedelta(days=5))
    buy(api, demo.portfolio_id, symbol="KO", provider="manual", date=traded, quantity="1000", price="100")
    wait_for("the chart with both", current_chart(api, demo.portfolio_id, chart_range="1Y"))

    # when the dashboard is opened
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server.url, demo.username, demo.password)

    # then each KO has its bar, labelled by its provider
    labels = page.locator("#allocation-holding .bar-label")
    expect(labels.filter(has_text="KO · manual")).to_have_count(1, timeout=30_000)
    texts = labels.all_text_contents()
    assert texts.count("KO · manual") == 1 and texts.count("KO · simulated") == 1 and "KO" not in texts

    # and each KO has its row in the holdings table, labelled the same, linked to its own instrument, the
    # manual one (worth more) above
    rows = page.locator("[data-testid=holdings] tbody tr[data-symbol=KO]")
    expect(rows).to_have_count(2)
    links = rows.locator("td.lead a")
    expect(links).to_have_text(["KO · manual", "KO · simulated"])
    ids = {provider: Instrument.objects.get(symbol="KO", provider=provider).pk for provider in ("manual", "simulated")}
    assert [link.get_attribute("href") for link in links.all()] == [
        f"/instruments/KO/?instrument={ids['manual']}", f"/instruments/KO/?instrument={ids['simulated']}"]

    # when the shared KO's row is followed, then its page shows the shared KO and its prices
    links.nth(1).click()
    expect(page.get_by_text("priced by Simulated")).to_be_visible()
    expect(page.locator("#price-status")).to_contain_text("Last close", timeout=30_000)


def test_an_error_banner_goes_once_the_same_action_succeeds(browser, live_server, settings):
    # given a user whose benchmark change was refused (a symbol too long), the page saying so
    settings.CHART_DEBOUNCE_SECONDS = 0
    user = UserFactory(username="erin")
    portfolio = PortfolioFactory(owner=user, name="Erin", base_currency="USD")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server.url, "erin", "correct-horse-battery")
    expect(page.locator("[data-testid=totals]")).to_have_attribute("data-loaded", "true")
    page.fill("[data-testid=benchmark-input]", "S" * 40)
    page.click("#benchmark-form button")
    expect(page.locator("[data-testid=benchmark-error]")).to_contain_text("could not be saved")

    # when the user clears the field and saves: then the change is saved and the error is gone
    page.fill("[data-testid=benchmark-input]", "")
    page.click("#benchmark-form button")
    expect(page.locator("[data-testid=benchmark-error]")).to_have_count(0)
    assert Portfolio.objects.get(pk=portfolio.pk).benchmark_id is None


def test_an_outdated_chart_whose_new_one_could_not_be_made_says_so_rather_than_updating_for_ever(
        worker, browser, live_server, settings):
    # given an older chart to serve, and a history no generation can replay (a sell of more than was held, written
    # straight to the database, as a broken restore might leave it)
    settings.CHART_DEBOUNCE_SECONDS = 0
    user = UserFactory(username="erin")
    portfolio = PortfolioFactory(owner=user, name="Erin", base_currency="USD")
    instrument = InstrumentFactory(symbol="FAIL")
    day = timezone.localdate() - timedelta(days=10)
    PriceFactory(instrument=instrument, date=day, close=Decimal("10"))
    TransactionFactory(portfolio=portfolio, instrument=instrument, date=day, quantity=Decimal("5"),
                       price=Decimal("10"))
    chart_data_store(portfolio_id=portfolio.pk, version=-1, data={"ranges": {"1Y": [
        {"date": day.isoformat(), "value": "50.00", "invested": "50.00"}]}})
    TransactionFactory(portfolio=portfolio, instrument=instrument, type="SELL", date=day,
                       quantity=Decimal("50"), price=Decimal("1"))

    # when the dashboard serves the older chart while the worker's new one fails
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server.url, "erin", "correct-horse-battery")
    note = page.locator("#chart-note")

    # then the note first says it is updating, then that the new chart could not be made — and, once no run is left
    # in flight (the page's reads after a failure may queue another, debounced here by 0 s), it still says so
    expect(note).to_contain_text("could not be made", timeout=30_000)
    wait_for("the last run failed", lambda: (chart_progress_get(portfolio_id=portfolio.pk) or {}).get(
        "state") == "FAILURE", timeout=30)
    expect(note).to_contain_text("could not be made", timeout=30_000)
    assert "updating" not in note.inner_text()
