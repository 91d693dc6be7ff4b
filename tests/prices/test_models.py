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


def test_price_history_indexes_exist_in_the_database():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "prices_pricehistory")
    assert constraints["pricehistory_instrument_date_uniq"]["columns"] == ["instrument_id", "date"]
    assert constraints["pricehistory_instrument_date_uniq"]["unique"] is True
    assert constraints["pricehistory_date_idx"]["columns"] == ["date"]
    assert constraints["pricehistory_updated_idx"]["columns"] == ["last_updated"]
    assert constraints["pricehistory_date_idx"]["index"] is True
