# The series rows' revisions (migration 0009) in their unique (instrument_id, year) index, so that a chart
# worker's kept read (prices/series.py, the process cache) learns whether anything changed from the index
# alone, by an index-only scan, without visiting the rows: ~2 rows of ~3 kB per 8 kB page, 2,750 pages
# (23 MB) for 500 instruments × 11 years, against ~30 index pages.
#
# The same constraint, same name and key, with the revision as a non-key column: one index to keep, as
# before. A hand-written UPDATE of a row can no longer be HOT (its revision, which every write changes, is
# in an index now); the re-packing triggers of migration 0005 delete and insert anyway. An index-only scan still visits the rows of the
# pages that the visibility map does not mark all-visible: those written since the table's last VACUUM
# (autovacuum's, after enough inserts or dead rows) — in a worker's day, this year's rows re-packed by the
# refreshes, the others read from the index alone.
#
# Postgres only, as the series are; the model's constraint is unchanged (on SQLite it stays a plain unique
# index, unused by the charts).

from django.db import migrations

COVER = """
ALTER TABLE prices_priceseries DROP CONSTRAINT priceseries_instrument_year_uniq,
    ADD CONSTRAINT priceseries_instrument_year_uniq UNIQUE (instrument_id, year) INCLUDE (revision);
"""

UNCOVER = """
ALTER TABLE prices_priceseries DROP CONSTRAINT priceseries_instrument_year_uniq,
    ADD CONSTRAINT priceseries_instrument_year_uniq UNIQUE (instrument_id, year);
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)  # no parameters: the statements go as one simple query
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("prices", "0009_price_series_revision"),
    ]

    operations = [
        migrations.RunPython(_on_postgres(COVER), _on_postgres(UNCOVER)),
    ]
