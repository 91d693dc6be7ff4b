"""Price series rows kept whole in the table's own pages instead of TOAST.

A year of one instrument is ~3 kB (4.4 kB for a market open every day): over Postgres's default 2 kB
toasting threshold, each row's two binary strings were stored out of line, so reading a chart's ~5,000
rows fetched ~10,000 TOAST chunks through their index as well. With the row's toasting target at the page
size they stay in the row (still uncompressed: the columns' storage stays EXTERNAL) and the read is a
quarter faster (measured on 500 instruments × 10 years: 39 -> 30 ms), and appending a day to this year's
rows no slower (500 rows: 8-12 ms against 11-21 ms). The UPDATE rewrites the existing rows so that they
move in now.
"""

from django.db import migrations

INLINE = """
ALTER TABLE prices_priceseries SET (toast_tuple_target = 8160);
UPDATE prices_priceseries SET days = days || ''::bytea, micros = micros || ''::bytea;
"""

TOASTED = "ALTER TABLE prices_priceseries RESET (toast_tuple_target);"


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)  # no parameters: the statements go as one simple query
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("prices", "0006_instrumentprofile"),
    ]

    operations = [
        migrations.RunPython(_on_postgres(INLINE), _on_postgres(TOASTED)),
    ]
