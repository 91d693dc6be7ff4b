# The date of each instrument's close before its newest one (prices.LatestClose.previous_date), kept by the same
# triggers as the rest of the row (migration 0008): a split between the two closes divides the earlier one, so
# that a day's change compares closes per share of today, and only the date says which splits came after it (a
# split recorded on a day without a close, between a Friday's close and a Monday's, was not seen before).

import importlib

from django.db import migrations, models

_LATEST = importlib.import_module("prices.migrations.0008_latest_close")

# The two newest closes of each instrument of `ids`, as one row: (instrument, newest date, its close, the close
# before it or NULL, that close's date or NULL).
NEWEST = """
    SELECT c.iid, p.date, p.close, p.previous, p.previous_date
    FROM unnest({ids}) AS c(iid)
    CROSS JOIN LATERAL (
        SELECT date, close, lead(close) OVER (ORDER BY date DESC) AS previous,
               lead(date) OVER (ORDER BY date DESC) AS previous_date
        FROM (SELECT date, close FROM prices_pricehistory WHERE instrument_id = c.iid
              ORDER BY date DESC LIMIT 2) AS two
        ORDER BY date DESC LIMIT 1) AS p
"""

KEEP = f"""
CREATE OR REPLACE FUNCTION prices_latest_keep(ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({_LATEST.LOCK_SPACE}, (i % 2147483647)::int) FROM unnest(ids) AS i ORDER BY i;
    -- As in migration 0008, with the previous close's date kept beside it.
    INSERT INTO prices_latestclose AS kept (instrument_id, date, close, previous_close, previous_date)
    {NEWEST.format(ids="ids")}
    ON CONFLICT (instrument_id) DO UPDATE
        SET date = EXCLUDED.date, close = EXCLUDED.close, previous_close = EXCLUDED.previous_close,
            previous_date = EXCLUDED.previous_date
        WHERE (kept.date, kept.close, kept.previous_close, kept.previous_date)
              IS DISTINCT FROM (EXCLUDED.date, EXCLUDED.close, EXCLUDED.previous_close, EXCLUDED.previous_date);
    DELETE FROM prices_latestclose AS kept WHERE kept.instrument_id = ANY(ids)
        AND NOT EXISTS (SELECT 1 FROM prices_pricehistory WHERE instrument_id = kept.instrument_id);
END $$;

UPDATE prices_latestclose AS kept SET previous_date = newest.previous_date
FROM ({NEWEST.format(ids="(SELECT array_agg(instrument_id) FROM prices_latestclose)")})
    AS newest(iid, date, close, previous, previous_date)
WHERE kept.instrument_id = newest.iid;
"""

# Back to migration 0008's function (its own text: the part of its script before the TRUNCATE trigger's).
UNKEEP = _LATEST.KEEP.split("-- TRUNCATE")[0].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


class Migration(migrations.Migration):

    dependencies = [
        ("prices", "0010_price_series_revision_covered"),
    ]

    operations = [
        migrations.AddField(
            model_name="latestclose",
            name="previous_date",
            field=models.DateField(null=True),
        ),
        migrations.RunPython(_LATEST._on_postgres(KEEP), _LATEST._on_postgres(UNKEEP)),
    ]
