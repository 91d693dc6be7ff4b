"""Every page at phone (390 px) and laptop (1366 px) width, in light and dark: nothing wider than the
viewport, figures in the one format (static/js/format.js), the theme followed and toggled, no console
error. The screenshots in docs/img are made here."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model

from portfolio.demo import DEMO_PORTFOLIO_NAME
from portfolio.models import Portfolio, Transaction
from tests.browser.test_dashboard import log_in

pytestmark = pytest.mark.django_db(transaction=True)

from playwright.sync_api import Page, expect  # noqa: E402

DOCS_IMG = Path(django_settings.BASE_DIR) / "docs" / "img"
SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots" / "layout"  # every page checked, for a look
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}

# Elements reaching past the viewport's edges, except inside a box that scrolls or clips them (that box is
# checked itself); and every chart canvas inside its card.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const clipped = (node) => {
    for (let p = node.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") return true;
    }
    return false;
  };
  const name = (n) => n.tagName.toLowerCase() + (n.id ? "#" + n.id : "")
    + (typeof n.className === "string" && n.className ? "." + n.className.trim().split(/\\s+/).join(".") : "");
  const wide = [];
  document.querySelectorAll("body *").forEach((node) => {
    const box = node.getBoundingClientRect();
    if (!box.width || getComputedStyle(node).display === "none") return;
    const outside = box.right > width + 1 || box.left < -1 || box.width > width;
    if (outside && !clipped(node)) wide.push(`${name(node)} ${Math.round(box.left)}..${Math.round(box.right)}`);
  });
  document.querySelectorAll(".card canvas").forEach((canvas) => {
    const card = canvas.closest(".card").getBoundingClientRect(), box = canvas.getBoundingClientRect();
    if (box.right > card.right + 1) wide.push(`canvas in card ${Math.round(box.right)} > ${Math.round(card.right)}`);
  });
  return { scroll: document.documentElement.scrollWidth, width: width, wide: wide };
}"""


# Share of the value chart's pixels painted opaque black.
BLACK_SHARE = """() => {
  const canvas = document.querySelector("#chart canvas");
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let black = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i] + pixels[i + 1] + pixels[i + 2] === 0 && pixels[i + 3] === 255) black++;
  }
  return black / (pixels.length / 4);
}"""


def grouped(value: Decimal, places: int) -> str:
    """The rule of format.js written independently: grouped thousands, fixed places (en)."""
    return f"{value:,.{places}f}"


def quantity(value: Decimal) -> str:
    text = f"{value:,.8f}".rstrip("0").rstrip(".")
    return text


class Visit:
    """One browser context at one width and colour scheme, collecting what the console says."""

    def __init__(self, browser, url: str, viewport: dict, scheme: str) -> None:
        self.context = browser.new_context(viewport=viewport, color_scheme=scheme, is_mobile=viewport is PHONE,
                                           has_touch=viewport is PHONE)
        self.page: Page = self.context.new_page()
        self.url = url
        self.width = viewport["width"]
        self.problems: list[str] = []
        self.page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}")
                     if m.type in ("error", "warning") else None)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("response", lambda r: self.problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    def open(self, path: str) -> Page:
        self.page.goto(self.url + path)
        return self.page

    def fits(self, what: str) -> None:
        name = "".join(c if c.isalnum() else "-" for c in what).strip("-")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{self.width}.png"), full_page=True)
        result = self.page.evaluate(OVERFLOW)
        assert result["scroll"] <= self.width and result["wide"] == [], (what, self.width, result)

    def theme(self) -> str:
        return self.page.evaluate("() => window.FolioTheme.current()")

    def background_is_dark(self) -> bool:
        rgb = self.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(part) for part in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
        return (0.2126 * red + 0.7152 * green + 0.0722 * blue) < 80


@pytest.fixture
def demo(settings, demo):
    """The demo (tests/browser/conftest.py), its user an admin, signing up open."""
    settings.SIGNUP_ENABLED = True
    get_user_model().objects.filter(username=demo.username).update(is_staff=True, is_superuser=True)
    return demo


def dashboard_ready(page: Page) -> None:
    expect(page.locator("[data-testid=totals]")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#holdings-wrap")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#chart canvas")).to_be_visible(timeout=30_000)
    expect(page.locator("#performance-figures")).to_have_attribute("data-loaded", "true", timeout=30_000)


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["390px", "1366px"])
def test_every_page_fits_formats_its_figures_and_follows_the_theme(worker, browser, live_server, demo,
                                                                   viewport):
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    portfolio = Portfolio.objects.get(name=DEMO_PORTFOLIO_NAME)
    size = viewport["width"]

    # --- light (the system's choice) ---------------------------------------------------------------------
    light = Visit(browser, live_server.url, viewport, "light")
    page = light.open("/accounts/login/")
    assert light.theme() == "light" and not light.background_is_dark()
    light.fits("login")
    log_in(page, live_server.url, demo.username, demo.password)
    dashboard_ready(page)
    light.fits("dashboard")
    assert page.evaluate(BLACK_SHARE) < 0.02
    page.screenshot(path=str(DOCS_IMG / f"dashboard-{size}-light.png"))

    # figures: a USD stock's price to its 2 decimals and the portfolio's money to cents, grouped
    aapl = page.locator("[data-testid=holdings] tr[data-symbol=AAPL]")
    assert_matches(aapl.locator("[data-testid=holding-price]").inner_text(), r"^\d{1,3}(,\d{3})*\.\d{2} USD")
    assert_matches(aapl.locator("[data-testid=holding-value]").inner_text(), r"^\d{1,3}(,\d{3})*\.\d{2}$")
    assert_matches(page.locator("[data-testid=total-value]").inner_text(), r"^\d{1,3}(,\d{3})+\.\d{2}\s+USD$")
    quantities = page.locator("[data-testid=holding-quantity]").all_inner_texts()
    assert quantities and all(not q.endswith("0") or "." not in q for q in quantities), quantities
    assert_matches(page.locator("[data-perf=net_performance_percent]").inner_text(), r"^[+-]?\d+\.\d{2} %$")
    # the legend shows the latest point, never "--"
    legend = page.locator("#chart .u-legend").inner_text()
    assert "--" not in legend and "DATE" in legend.upper()
    # the Net performance card holds its figure and percentage, the benchmark field its Save button
    card = page.locator("[data-perf=net_performance]").locator("xpath=..")
    inside = card.evaluate("""c => [...c.children].every((n) => n.getBoundingClientRect().right
        <= c.getBoundingClientRect().right + 0.5)""")
    assert inside
    field, save = (page.locator(s).bounding_box() for s in ("[data-testid=benchmark-input]", "#benchmark-form button"))
    assert abs(field["y"] - save["y"]) < 8  # side by side, not wrapped under it

    if viewport is PHONE:  # the holdings as cards: symbol first, then value and gain, the rest below
        cells = aapl.locator("td").evaluate_all("cells => cells.map((c) => [c.dataset.label || '', c.offsetTop])")
        order = [label for label, _ in sorted(cells, key=lambda cell: cell[1])]
        assert order[0] == "Symbol" and set(order[1:3]) <= {"Market value", "Gain", "Gain %"}, order
        page.locator("section[aria-label=Holdings] h2").scroll_into_view_if_needed()
        page.screenshot(path=str(DOCS_IMG / "holdings-390-light.png"))

    # the chart follows its card when the window narrows (ResizeObserver)
    if viewport is LAPTOP:
        page.set_viewport_size({"width": 900, "height": 900})
        page.wait_for_function("() => document.querySelector('#chart canvas').getBoundingClientRect().right"
                               " <= document.querySelector('#chart').getBoundingClientRect().right + 1")
        light.fits("dashboard at 900 px")
        page.set_viewport_size(viewport)

    tx = Transaction.objects.filter(portfolio=portfolio, type="BUY").order_by("-date", "-pk").first()
    page = light.open(f"/portfolios/{portfolio.pk}/transactions/")
    light.fits("transactions")
    row = page.locator("[data-testid=transactions] tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert quantity(tx.quantity) in cells and grouped(tx.price, 2) in cells and grouped(tx.fee, 2) in cells, cells

    page = light.open(f"/instruments/{tx.instrument.symbol}/")
    expect(page.locator("#price-status")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#price-chart canvas")).to_be_visible()
    assert_matches(page.locator("#price-status").inner_text(), r"^Last close \d{1,3}(,\d{3})*\.\d{2} USD on ")
    light.fits("instrument")

    for path in ("/portfolios/", f"/portfolios/{portfolio.pk}/transactions/import/", "/monitoring/", "/watchlist/",
                 f"/portfolios/{portfolio.pk}/income/", f"/portfolios/{portfolio.pk}/accounts/"):
        page = light.open(path)
        if path.endswith("/accounts/"):
            value = page.locator("[data-testid=accounts] tbody tr").first.locator("[data-field=total_value]")
            assert_matches(value.inner_text(), r"^\d{1,3}(,\d{3})+\.\d{2}\s+USD")
        if path == "/portfolios/":
            value = page.locator(f"tr[data-portfolio='{portfolio.pk}'] [data-field=total_value]").inner_text()
            assert_matches(value, r"^\d{1,3}(,\d{3})+\.\d{2}\s+USD")
        if path.endswith("/income/"):
            expect(page.locator("[data-field=total]")).to_have_text(re.compile(r"^\d{1,3}(,\d{3})*\.\d{2}\s+USD$"))
        if path == "/monitoring/":
            expect(page.locator("#monitoring")).to_have_attribute("data-loaded", "true")
            # no refresh job has finished yet: the chart says so instead of drawing an axis from 1970
            expect(page.locator("#jobs-chart [data-testid=empty-chart]")).to_contain_text("No jobs yet")
            latency = page.locator("[data-testid=endpoints-table] tbody tr").first.locator("td").nth(2).inner_text()
            assert_matches(latency, r"^\d{1,3}(,\d{3})*(\.\d)? ms$")
        light.fits(path)
    page = light.open("/api/docs/")
    expect(page.locator(".swagger-ui .info")).to_be_visible(timeout=30_000)
    page = light.open("/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    assert light.problems == []

    # --- dark: the system's choice followed, charts in its colours; the toggle remembered ---------------
    dark = Visit(browser, live_server.url, viewport, "dark")
    page = dark.open("/accounts/signup/")
    assert dark.theme() == "dark" and dark.background_is_dark()
    dark.fits("signup")
    log_in(page, live_server.url, demo.username, demo.password)
    dashboard_ready(page)
    dark.fits("dashboard, dark")
    marker = page.locator("#chart .u-legend .u-series").nth(1).locator(".u-marker")
    value_colour = lambda: marker.evaluate("m => getComputedStyle(m).borderColor")  # noqa: E731
    assert value_colour() == "rgb(96, 165, 250)"  # --chart-value, dark
    # drawn in those colours: a canvas given a colour it cannot parse paints black
    assert page.evaluate(BLACK_SHARE) < 0.02
    page.screenshot(path=str(DOCS_IMG / f"dashboard-{size}-dark.png"))
    page = dark.open("/monitoring/")
    expect(page.locator("#monitoring")).to_have_attribute("data-loaded", "true")
    dark.fits("monitoring, dark")
    if viewport is LAPTOP:
        page.screenshot(path=str(DOCS_IMG / "monitoring-1366-dark.png"))

    page = dark.open("/")
    dashboard_ready(page)
    page.click("[data-testid=theme-toggle]")
    assert dark.theme() == "light" and not dark.background_is_dark()
    expect(marker).to_have_css("border-color", "rgb(37, 99, 235)")  # the chart redrawn in light colours
    page.reload()
    assert dark.theme() == "light"  # remembered (localStorage), over the system's dark
    assert dark.problems == []
    light.context.close()
    dark.context.close()


def assert_matches(text: str, pattern: str) -> None:
    import re  # noqa: PLC0415

    assert re.search(pattern, text.strip()), (pattern, text)
