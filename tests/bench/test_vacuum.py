"""Between sections the bench settles its database as autovacuum would (bench/env.py `database_vacuum`), and the
report's method says so, with the server's own autovacuum setting."""

import pytest
from django.db import connection

from bench.env import database_vacuum, postgres_autovacuum
from bench.report import _method_md
from prices.models import Instrument
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="VACUUM is Postgres's")


def _visibility(table: str) -> tuple[int, int, float]:
    """(pages, pages all-visible, rows as the statistics count them): VACUUM and ANALYZE set them as they run."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpages, relallvisible, reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_the_bench_vacuums_its_database_as_autovacuum_would():
    table = Instrument._meta.db_table
    InstrumentFactory.create_batch(300)
    Instrument.objects.update(name="renamed")  # every row's old version dead
    # (the table emptied between tests, and not vacuumed since: no page known, let alone all-visible)
    assert _visibility(table)[1] == 0
    database_vacuum()
    pages, visible, rows = _visibility(table)
    # the dead versions gone (every page all-visible) and the statistics counting the live rows
    assert pages > 0 and visible == pages
    assert rows == 300
    assert postgres_autovacuum() in ("on", "off")


def test_the_method_names_the_vacuums_and_the_servers_autovacuum():
    results = {"machine": {"postgres_autovacuum": "off"}, "vacuum_seconds": {"refresh": 0.41, "chart": 1.53}}
    text = "\n".join(_method_md(results))
    assert ("- Before each section, outside its timings, the bench runs `VACUUM ANALYZE` on its database (0.4 s "
            "before refresh, 1.5 s before chart), as autovacuum does") in text
    assert "This server's autovacuum was off." in text
    # a run that recorded none (an older result) says nothing of it
    assert "VACUUM" not in "\n".join(_method_md({"machine": {}}))
