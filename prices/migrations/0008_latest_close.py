# Each instrument's newest close and the one before it (prices.LatestClose), kept by the database.
#
# Valuing a portfolio today reads its instruments' two newest closes on every dashboard cache miss. As a
# LATERAL walk down (instrument, date) per instrument that was 3.5 ms of Postgres for 500 holdings (twice
# that on a busy machine); as one row per instrument joined by primary key it is well under one. The rows
# are kept as the packed series are (migration 0005): statement-level triggers on prices_pricehistory read
# the two newest closes again of every instrument a statement wrote, updated or deleted rows of, in the
# writing transaction, whoever wrote (prices_upsert, COPY, the admin); under the same per-instrument
# advisory locks as the series (taken again here: they are re-entrant), so two writers of one instrument
# keep it one after the other, the second seeing the first's rows.
#
# Postgres only (transition tables); on SQLite the table stays empty and prices.selectors reads the rows.

import django.db.models.deletion
from django.db import migrations, models

# Namespace of the advisory locks, as migration 0005's (prices/series.py SERIES_LOCK_SPACE).
LOCK_SPACE = 7215

# The two newest closes of each instrument of `ids`, as one row: (instrument, newest date, its close, the
# close before it or NULL).
NEWEST = """
    SELECT c.iid, p.date, p.close, p.previous
    FROM unnest({ids}) AS c(iid)
    CROSS JOIN LATERAL (
        SELECT date, close, lead(close) OVER (ORDER BY date DESC) AS previous
        FROM (SELECT date, close FROM prices_pricehistory WHERE instrument_id = c.iid
              ORDER BY date DESC LIMIT 2) AS two
        ORDER BY date DESC LIMIT 1) AS p
"""

KEEP = f"""
CREATE FUNCTION prices_latest_keep(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_SPACE}, (i % 2147483647)::int) FROM unnest(ids) AS i ORDER BY i;
    -- Each statement below takes a fresh snapshot: after the lock it sees the last writer's rows. A row is
    -- rewritten only when it changed: a refresh re-sending the closes it has leaves the table untouched
    -- (no dead rows for the valuation's whole-table read to step over).
    INSERT INTO prices_latestclose AS kept (instrument_id, date, close, previous_close) {NEWEST.format(ids="ids")}
    ON CONFLICT (instrument_id) DO UPDATE
        SET date = EXCLUDED.date, close = EXCLUDED.close, previous_close = EXCLUDED.previous_close
        WHERE (kept.date, kept.close, kept.previous_close)
              IS DISTINCT FROM (EXCLUDED.date, EXCLUDED.close, EXCLUDED.previous_close);
    DELETE FROM prices_latestclose AS kept WHERE kept.instrument_id = ANY(ids)
        AND NOT EXISTS (SELECT 1 FROM prices_pricehistory WHERE instrument_id = kept.instrument_id);
END $$;

-- TRUNCATE fires no row or statement trigger of the writes: without this the table would keep closes
-- that no longer exist.
CREATE FUNCTION prices_latest_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM prices_latestclose;
    RETURN NULL;
END $$;

CREATE FUNCTION prices_latest_on_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT instrument_id) INTO ids FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(DISTINCT instrument_id) INTO ids
        FROM (SELECT instrument_id FROM old_rows UNION ALL SELECT instrument_id FROM new_rows) AS r;
    ELSE
        SELECT array_agg(DISTINCT instrument_id) INTO ids FROM old_rows;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM prices_latest_keep(ids);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER prices_latest_on_insert AFTER INSERT ON prices_pricehistory
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prices_latest_on_write();
CREATE TRIGGER prices_latest_on_update AFTER UPDATE ON prices_pricehistory
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prices_latest_on_write();
CREATE TRIGGER prices_latest_on_delete AFTER DELETE ON prices_pricehistory
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION prices_latest_on_write();
CREATE TRIGGER prices_latest_on_truncate AFTER TRUNCATE ON prices_pricehistory
    FOR EACH STATEMENT EXECUTE FUNCTION prices_latest_on_truncate();

INSERT INTO prices_latestclose (instrument_id, date, close, previous_close)
{NEWEST.format(ids="(SELECT array_agg(id) FROM prices_instrument)")};
"""

UNKEEP = """
DROP TRIGGER IF EXISTS prices_latest_on_insert ON prices_pricehistory;
DROP TRIGGER IF EXISTS prices_latest_on_update ON prices_pricehistory;
DROP TRIGGER IF EXISTS prices_latest_on_delete ON prices_pricehistory;
DROP TRIGGER IF EXISTS prices_latest_on_truncate ON prices_pricehistory;
DROP FUNCTION IF EXISTS prices_latest_on_truncate();
DROP FUNCTION IF EXISTS prices_latest_on_write();
DROP FUNCTION IF EXISTS prices_latest_keep(bigint[]);
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)  # no parameters: the statements go as one simple query
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("prices", "0007_price_series_inline"),
    ]

    operations = [
        migrations.CreateModel(
            name="LatestClose",
            fields=[
                ("instrument", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                    related_name="latest_close", serialize=False,
                                                    to="prices.instrument")),
                ("date", models.DateField()),
                ("close", models.DecimalField(decimal_places=6, max_digits=20)),
                ("previous_close", models.DecimalField(decimal_places=6, max_digits=20, null=True)),
            ],
        ),
        migrations.RunPython(_on_postgres(KEEP), _on_postgres(UNKEEP)),
    ]
