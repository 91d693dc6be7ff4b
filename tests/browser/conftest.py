"""Fixtures of the browser tests: one Chromium for the session (the demo they start from is tests/conftest.py's
`demo`, seeded once per session)."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# The live server runs in a thread of this process; Playwright's sync API runs its own event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium for every browser test (a launch costs seconds); each test opens its own pages and
    contexts, closed after it by `browser_contexts_closed`."""
    # CI sets FOLIO_REQUIRE_BROWSER=1: there a missing browser is a failure, not a skip.
    if not Path(CHROMIUM).exists():
        if os.environ.get("FOLIO_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def browser_contexts_closed(request) -> Iterator[None]:
    """A test's pages stop when it ends: none keeps polling the live server into the next test."""
    yield
    if "browser" in request.fixturenames:
        for context in request.getfixturevalue("browser").contexts:
            context.close()
