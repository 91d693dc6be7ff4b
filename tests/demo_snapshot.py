"""The demo (portfolio/demo.py) seeded once per session and copied back for each test that starts from it.

Seeding it (~550 trades, each validated against the history before it) costs 5-15 s of CPU, and the
browser tests and tests/portfolio/test_seed_demo.py start from it a dozen times. Its rows are the same every
time on a given day (a fixed random seed, the simulated provider's deterministic prices), so they are written
once, copied out of Postgres (COPY), and copied back for each test that asks for the `demo` fixture
(tests/conftest.py). test_seed_demo_is_idempotent_and_prices_the_portfolio runs `manage.py seed_demo` again on
that copy; its first run on an empty database is bin/run's set-up in tests/test_first_run.py.
"""

from dataclasses import dataclass
from datetime import date

from django.apps import apps
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone

from portfolio.demo import DemoResult, demo_seed
from portfolio.history import portfolio_history_request_for
from portfolio.models import Portfolio
from portfolio.signals import portfolios_changed
from tests.worker import worker_running, worker_settle

# Not copied: rows there before any test writes (migrate and post_migrate make them, a flush keeps them),
# the price rows' two mirrors (series, latest closes), which triggers on prices_pricehistory write again as
# its rows are copied back, and the portfolios' kept replays, whose rows a trigger makes as the portfolios are
# copied back (their replays are made again as they are read).
MIRRORS = ["prices_priceseries", "prices_latestclose", "portfolio_keptreplay"]
NOT_COPIED = {"django_migrations", "django_content_type", "auth_permission", *MIRRORS}


@dataclass
class DemoSnapshot:
    """The rows demo_seed wrote on `day`, table by table, in Postgres's COPY format, and what it returned."""

    day: date
    tables: dict[str, bytes]
    seeded: DemoResult

    def restore(self) -> DemoResult:
        """Copy the rows back (foreign keys are checked at commit: Django makes them deferrable) and set the
        id sequences to their largest id. Then, once that commits, what the seed's commits did outside the
        database: its trades ask for their history (the worker's backfills) and the portfolio is announced
        changed (its chart regenerates). In a test inside one transaction, neither runs, as for a seed."""
        with transaction.atomic(), connection.cursor() as cursor:
            for table, rows in self.tables.items():
                with cursor.cursor.copy(f'COPY "{table}" FROM STDIN') as copy:
                    copy.write(rows)
            restored = [model for model in apps.get_models(include_auto_created=True)
                        if model._meta.db_table in self.tables]
            for sql in connection.ops.sequence_reset_sql(no_style(), restored):
                cursor.execute(sql)
        portfolio_id = self.seeded.portfolio_id

        def committed() -> None:
            portfolio_history_request_for(portfolio=Portfolio.objects.get(pk=portfolio_id))
            portfolios_changed.send(sender=Portfolio, portfolio_ids=[portfolio_id], since=None, history=True)

        transaction.on_commit(committed)
        return self.seeded


def demo_snapshot_take(flush_redis) -> DemoSnapshot:
    """Seed the demo into the (empty) database, copy its rows out, then empty the database and, with
    `flush_redis`, Redis again, as a test expects to find them."""
    day = timezone.localdate()
    seeded = demo_seed()
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
        emptied = [*tables, *MIRRORS]
        cursor.execute("TRUNCATE {} CASCADE".format(", ".join(f'"{table}"' for table in emptied)))
    flush_redis()
    return DemoSnapshot(day=day, tables=tables, seeded=seeded)
