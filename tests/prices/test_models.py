"""Migrations are complete and create the named price-history indexes in the real database."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db


def test_models_and_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_price_history_has_the_one_index_its_reads_use():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "prices_pricehistory")
    assert constraints["pricehistory_instrument_date_uniq"]["columns"] == ["instrument_id", "date"]
    assert constraints["pricehistory_instrument_date_uniq"]["unique"] is True
    # Dropped by prices 0004: no query reads price history by date alone or by last_updated.
    others = {name for name, c in constraints.items()
              if c["index"] and not c["primary_key"] and name != "pricehistory_instrument_date_uniq"}
    assert others == set()
