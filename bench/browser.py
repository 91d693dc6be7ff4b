"""Benchmark 6: the dashboard in headless Chromium (Debian's, driven by Playwright), warm: time from
navigation start to the totals shown and to the chart drawn, read from the page's own marks
(dashboard.js stamps `data-loaded-at` with performance.now(), which counts from navigation start).

Baseline from the same run: the naive page, which renders totals and chart on the server in one
response, timed the same way (its totals and chart appear when its HTML has arrived).
"""

from __future__ import annotations

from bench.dashboard import chart_make_current
from bench.data import DASHBOARD_PASSWORD, DASHBOARD_USER
from bench.env import apt_install
from bench.stats import summary_ms
from bench.web import web_server

# Flags of the product's browser tests: no sandbox as root, nothing that reaches out of loopback.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TIMEOUT_MS = 60_000

_MARKS = """() => {
  const at = (selector) => Number(document.querySelector(selector).dataset.loadedAt);
  const nav = performance.getEntriesByType('navigation')[0];
  return {totals: at('[data-testid=totals]'), holdings: at('#holdings-wrap'), chart: at('#chart'),
          shell_response_end: nav.responseEnd, shell_dom_content_loaded: nav.domContentLoadedEventEnd};
}"""
_CHART_DRAWN = """() => { const c = document.querySelector('#chart');
  return !!(c && c.dataset.loadedAt && document.querySelector('#chart canvas')); }"""
_NAIVE_MARKS = """() => { const nav = performance.getEntriesByType('navigation')[0];
  return {response_end: nav.responseEnd, dom_content_loaded: nav.domContentLoadedEventEnd}; }"""


def run(*, data, runs: int, naive_runs: int, web_workers: int, web_threads: int) -> dict:
    chromium = apt_install("chromium", "chromium")
    if chromium is None:
        raise RuntimeError("Debian's chromium is not installed and could not be installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    pid = data.portfolio_id
    chart_make_current(pid)
    with web_server(name="web-browser", workers=web_workers, threads=web_threads) as server, \
            sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{server.url}/accounts/login/")
            page.fill("input[name=username]", DASHBOARD_USER)
            page.fill("input[name=password]", DASHBOARD_PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{server.url}/**")
            url = f"{server.url}/?portfolio={pid}"
            page.goto(url)  # warm: browser cache, server caches, connections
            page.wait_for_function(_CHART_DRAWN)
            marks = []
            for _ in range(runs):
                page.goto(url)
                page.wait_for_function(_CHART_DRAWN)
                marks.append(page.evaluate(_MARKS))
            naive = []
            for _ in range(naive_runs):
                page.goto(f"{server.url}/bench/naive-page/{pid}/")
                page.wait_for_selector("#naive-totals")
                naive.append(page.evaluate(_NAIVE_MARKS))
        finally:
            browser.close()

    def series(key: str, rows: list[dict]) -> dict:
        return summary_ms([row[key] / 1000 for row in rows])

    result = {
        "runs": runs,
        "holdings_rows": data.holdings,
        "totals_ms": series("totals", marks),
        "holdings_ms": series("holdings", marks),
        "chart_ms": series("chart", marks),
        "shell_response_end_ms": series("shell_response_end", marks),
        "naive_runs": naive_runs,
        "naive_totals_ms": series("dom_content_loaded", naive) if naive else None,
    }
    if naive:
        naive_p50 = result["naive_totals_ms"]["p50"]
        result["totals_speedup_vs_naive"] = round(naive_p50 / result["totals_ms"]["p50"], 1)
        result["chart_speedup_vs_naive"] = round(naive_p50 / result["chart_ms"]["p50"], 1)
    return result
