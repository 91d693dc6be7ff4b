# Each instrument's close history packed one calendar year per row (prices.PriceSeries), kept by the
# database.
#
# A chart of 500 holdings × 10 years read 1.26 M price rows and had Postgres aggregate them on every
# generation, although all but the last day never change. The series are packed once here and then
# kept by statement-level triggers on prices_pricehistory, in the writing transaction: per instrument
# a statement wrote, updated or deleted rows of, every year from the earliest such row's on is packed
# again from the table (a new day re-packs this year's ~250 rows; a backfill or a past correction
# re-packs from its year on). Row triggers would re-pack once per row of a 2,000-row upsert; statement
# triggers with transition tables see the whole statement at once. A transaction-scoped advisory lock
# per instrument, taken in id order, makes two writers of one instrument re-pack one after the other,
# the second seeing the first's rows (prices_upsert takes the same locks before it writes any row:
# prices/series.py price_series_lock).
#
# Postgres only (transition tables); on SQLite the table stays empty and the charts read the rows.

import django.db.models.deletion
from django.db import migrations, models

# Days since 1970-01-01 as int32, closes in millionths as int64, both big-endian (int4send, int8send),
# clamped as charts.selectors.close_micros clamps.
PACK = """
    SELECT p.instrument_id, extract(year FROM p.date)::smallint AS year,
           string_agg(int4send(p.date - DATE '1970-01-01'), ''::bytea ORDER BY p.date),
           string_agg(int8send((LEAST(p.close, 9000000000000) * 1000000)::bigint), ''::bytea ORDER BY p.date)
    FROM prices_pricehistory p
"""
# Namespace of the advisory locks (the other key is the instrument id, modulo 2^31 - 1).
LOCK_SPACE = 7215

SPLICE = f"""
CREATE FUNCTION prices_series_repack(ids bigint[], froms date[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- Keyed by the id modulo 2^31 - 1 (the key is an int4): two instruments sharing a key only wait for
    -- each other.
    PERFORM pg_advisory_xact_lock({LOCK_SPACE}, (i % 2147483647)::int) FROM unnest(ids) AS i ORDER BY i;
    -- Each statement below takes a fresh snapshot: after the lock it sees the last writer's rows.
    DELETE FROM prices_priceseries s USING unnest(ids, froms) AS c(iid, m)
    WHERE s.instrument_id = c.iid AND s.year >= extract(year FROM c.m);
    INSERT INTO prices_priceseries (instrument_id, year, days, micros)
    {PACK} JOIN unnest(ids, froms) AS c(iid, m)
        ON p.instrument_id = c.iid AND p.date >= make_date(extract(year FROM c.m)::int, 1, 1)
    GROUP BY 1, 2;
END $$;

CREATE FUNCTION prices_series_on_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    froms date[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(iid ORDER BY iid), array_agg(m ORDER BY iid) INTO ids, froms
        FROM (SELECT instrument_id AS iid, min(date) AS m FROM new_rows GROUP BY 1) c;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT array_agg(iid ORDER BY iid), array_agg(m ORDER BY iid) INTO ids, froms
        FROM (SELECT instrument_id AS iid, min(date) AS m FROM (
            SELECT instrument_id, date FROM old_rows UNION ALL SELECT instrument_id, date FROM new_rows) r
            GROUP BY 1) c;
    ELSE
        SELECT array_agg(iid ORDER BY iid), array_agg(m ORDER BY iid) INTO ids, froms
        FROM (SELECT instrument_id AS iid, min(date) AS m FROM old_rows GROUP BY 1) c;
    END IF;
    IF ids IS NOT NULL THEN
        PERFORM prices_series_repack(ids, froms);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER prices_series_on_insert AFTER INSERT ON prices_pricehistory
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prices_series_on_write();
CREATE TRIGGER prices_series_on_update AFTER UPDATE ON prices_pricehistory
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION prices_series_on_write();
CREATE TRIGGER prices_series_on_delete AFTER DELETE ON prices_pricehistory
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION prices_series_on_write();

-- Read whole on every chart generation: stored uncompressed (closes barely compress).
ALTER TABLE prices_priceseries ALTER COLUMN days SET STORAGE EXTERNAL;
ALTER TABLE prices_priceseries ALTER COLUMN micros SET STORAGE EXTERNAL;

INSERT INTO prices_priceseries (instrument_id, year, days, micros) {PACK} GROUP BY 1, 2;
"""

UNSPLICE = """
DROP TRIGGER IF EXISTS prices_series_on_insert ON prices_pricehistory;
DROP TRIGGER IF EXISTS prices_series_on_update ON prices_pricehistory;
DROP TRIGGER IF EXISTS prices_series_on_delete ON prices_pricehistory;
DROP FUNCTION IF EXISTS prices_series_on_write();
DROP FUNCTION IF EXISTS prices_series_repack(bigint[], date[]);
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)  # no parameters: the statements go as one simple query
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("prices", "0004_pricehistory_drop_unused_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="PriceSeries",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("year", models.SmallIntegerField()),
                ("days", models.BinaryField()),
                ("micros", models.BinaryField()),
                ("instrument", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                                 related_name="price_series", to="prices.instrument")),
            ],
            options={
                "verbose_name_plural": "price series",
                "constraints": [models.UniqueConstraint(fields=("instrument", "year"),
                                                        name="priceseries_instrument_year_uniq")],
            },
        ),
        migrations.RunPython(_on_postgres(SPLICE), _on_postgres(UNSPLICE)),
    ]
