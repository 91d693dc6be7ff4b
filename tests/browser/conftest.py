"""Fixtures of the browser tests: one Chromium for the session, and the demo seeded once per session.

Seeding the demo (portfolio/demo.py: ~700 trades, each validated against the history before it) costs
10–25 s of CPU; ten browser tests start from it. Its rows are the same every time on a given day (a fixed
random seed, the simulated provider's deterministic prices), so they are written once, copied out of
Postgres, and copied back in for each test that asks for `demo`; tests/portfolio/test_seed_demo.py tests
the seeding itself.
"""

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone
from playwright.sync_api import Browser, sync_playwright

from portfolio.demo import DemoResult, demo_seed
from portfolio.history import portfolio_history_request_for
from portfolio.models import Portfolio
from tests.conftest import redis_flush_except_broker_bindings
from tests.worker import worker_running, worker_settle

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# The live server runs in a thread of this process; Playwright's sync API runs its own event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# Not copied: rows there before any test writes (migrate and post_migrate make them, a flush keeps them),
# and the price series, which triggers on prices_pricehistory write again as its rows are copied back.
NOT_COPIED = {"django_migrations", "django_content_type", "auth_permission", "prices_priceseries"}


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


@dataclass
class DemoSnapshot:
    """The rows demo_seed wrote on `day`, table by table, in Postgres's COPY format."""

    day: date
    tables: dict[str, bytes]

    def restore(self) -> DemoResult:
        """Copy the rows back (foreign keys are checked at commit: Django makes them deferrable), move
        the id sequences past them, then run demo_seed as a second `seed_demo` would: it finds
        everything there, tops the prices up and refreshes the profiles, with the signals that follow.
        The history requests the trades made when they were written are made again, so the worker gets
        what it got after a fresh seed."""
        with transaction.atomic(), connection.cursor() as cursor:
            for table, rows in self.tables.items():
                with cursor.cursor.copy(f'COPY "{table}" FROM STDIN') as copy:
                    copy.write(rows)
            restored = [model for model in apps.get_models(include_auto_created=True)
                        if model._meta.db_table in self.tables]
            for sql in connection.ops.sequence_reset_sql(no_style(), restored):
                cursor.execute(sql)
        demo = demo_seed()
        portfolio_history_request_for(portfolio=Portfolio.objects.get(pk=demo.portfolio_id))
        return demo


def _demo_snapshot_take() -> DemoSnapshot:
    day = timezone.localdate()
    demo_seed()
    if worker_running():  # what the seed queued ran on it: settle before copying
        worker_settle()
    tables = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.django_table_names(only_existing=True, include_views=False):
            if table in NOT_COPIED:
                continue
            with cursor.cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
                rows = b"".join(bytes(chunk) for chunk in copy)
            if rows:
                tables[table] = rows
        # Leave the database and Redis as a test expects to find them: empty.
        emptied = [*tables, "prices_priceseries"]
        cursor.execute("TRUNCATE {} CASCADE".format(", ".join(f'"{table}"' for table in emptied)))
    redis_flush_except_broker_bindings()
    return DemoSnapshot(day=day, tables=tables)


@pytest.fixture(scope="session")
def demo_snapshot(django_db_setup, django_db_blocker) -> DemoSnapshot | None:
    """Taken before the first test that asks for it starts its worker (a session fixture is set up before
    a module's), on an empty database; None where there is no COPY (SQLite): each test seeds."""
    if connection.vendor != "postgresql":
        return None
    with django_db_blocker.unblock():
        return _demo_snapshot_take()


@pytest.fixture
def demo(settings, transactional_db, demo_snapshot) -> DemoResult:
    """The demo user and portfolio, as `manage.py seed_demo` leaves them (see the module's docstring)."""
    settings.CHART_DEBOUNCE_SECONDS = 0
    if demo_snapshot is None:
        return demo_seed()
    if demo_snapshot.day != timezone.localdate():  # past midnight: the demo's history now ends today
        fresh = _demo_snapshot_take()
        demo_snapshot.day, demo_snapshot.tables = fresh.day, fresh.tables
    return demo_snapshot.restore()
