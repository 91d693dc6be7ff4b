# A revision on each packed series row (prices.PriceSeries), so that a chart worker can keep the rows it
# decoded and ask Postgres only which of them changed (prices/series.py, the process cache).
#
# Every row written to prices_priceseries, by INSERT or UPDATE, whoever writes it (the re-packing triggers
# of migration 0005, which delete and insert a year again; a hand-written UPDATE; a COPY), is given the next
# value of its own sequence by a row trigger: two rows never carry the same revision, a rolled-back write's
# revisions are never handed out again (sequences are not transactional), and the sequence belongs to no
# column, so no TRUNCATE ... RESTART IDENTITY or Django flush restarts it. A row deleted is absent from the
# next read. TRUNCATE of the price rows fired none of the series' triggers: it left their series in place
# (closes that no longer exist); it now empties them, as it empties the latest closes (migration 0008).
#
# Postgres only, as the series are; on SQLite the column is there and unused.

from django.db import migrations, models

REVISE = """
CREATE SEQUENCE prices_priceseries_revision_seq;

CREATE FUNCTION prices_series_revise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := nextval('prices_priceseries_revision_seq');
    RETURN NEW;
END $$;

CREATE TRIGGER prices_series_revise BEFORE INSERT OR UPDATE ON prices_priceseries
    FOR EACH ROW EXECUTE FUNCTION prices_series_revise();

CREATE FUNCTION prices_series_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM prices_priceseries;
    RETURN NULL;
END $$;

CREATE TRIGGER prices_series_on_truncate AFTER TRUNCATE ON prices_pricehistory
    FOR EACH STATEMENT EXECUTE FUNCTION prices_series_on_truncate();

-- The rows already packed get theirs (the trigger gives each one its own).
UPDATE prices_priceseries SET revision = 0;
"""

UNREVISE = """
DROP TRIGGER IF EXISTS prices_series_on_truncate ON prices_pricehistory;
DROP FUNCTION IF EXISTS prices_series_on_truncate();
DROP TRIGGER IF EXISTS prices_series_revise ON prices_priceseries;
DROP FUNCTION IF EXISTS prices_series_revise();
DROP SEQUENCE IF EXISTS prices_priceseries_revision_seq;
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)  # no parameters: the statements go as one simple query
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("prices", "0008_latest_close"),
    ]

    operations = [
        migrations.AddField(
            model_name="priceseries",
            name="revision",
            # Set by the database on every write (the trigger above); the 0 an ORM insert sends is replaced.
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(_on_postgres(REVISE), _on_postgres(UNREVISE)),
    ]
