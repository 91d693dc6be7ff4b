# A portfolio's replayed transactions, kept (portfolio.KeptReplay, portfolio/kept.py), and the triggers that
# outdate them.
#
# A valuation replays every transaction of the portfolio (and the cash trades they imply) before it can value
# anything: for 2,000 transactions that was most of a cold dashboard. The replay's result is now kept, with the
# `version` of the portfolio's row in portfolio_keptreplay it was made at (`state_version`). Whatever the replay
# reads is watched here, in the writing transaction, whoever writes (the services, an import, the admin, COPY,
# SQL by hand): a statement that changes it adds 1 to the version of every portfolio it concerns, and their
# kept replays stop serving. What the replay reads, and the trigger that watches it:
#
#   - the portfolio's transactions, every field (portfolio_transaction: insert, update, delete, truncate);
#   - whether each one's account tracks cash (portfolio_account: update of tracks_cash);
#   - the portfolio's base currency (portfolio_portfolio: update of base_currency);
#   - each instrument's currency, into which its trades are converted as price observations
#     (prices_instrument: update of currency);
#   - the FX rates on the transactions' dates (prices_fxrate: insert, update of a rate, delete, truncate): a rate
#     of day d serves the days from d until the next rate, so every portfolio with a transaction on or after d;
#   - the shared cash instruments: not here, the read checks them (portfolio/kept.py).
#
# The versions live in their own rows, not the portfolios': the triggers lock only them, each statement in
# portfolio order. A writer that also locks a portfolio's row takes its kept row first (portfolio/kept.py
# portfolio_write_lock, as the services do; a shared write's data-version bump comes after its trigger): none
# holds a portfolio's row while it waits for a kept row. A row per portfolio, made as the portfolio is (and outdated, should a row be left of a deleted portfolio
# whose id comes back).
#
# The triggers on the rows shared by portfolios (FX rates, instruments, accounts) find the portfolios they concern
# among the committed transactions: a transaction written but not yet committed is not among them, and a read
# between the two commits could keep a replay of the shared row as it was, at the version of the transaction. So
# each of those triggers also takes an advisory lock, shared (one never waits for another), held until its
# transaction ends: a mark that a shared write is in flight. A read stores its replay only if no other session
# held the mark when it read the version nor when it stores (portfolio/kept.py): a shared write in flight at
# either time may have missed the portfolio; one that started between the two saw every transaction committed
# before the version was read. Nothing waits on the mark, so it adds no wait to any writer.
#
# Postgres only (transition tables); on SQLite nothing is kept and every valuation replays.

from django.db import migrations, models
import django.db.models.deletion

# The advisory lock of a shared write in flight (portfolio/kept.py SHARED_WRITE_LOCK; prices' series and latest
# closes use namespace 7215).
LOCK_SPACE = 7216

BUMP = f"""
CREATE FUNCTION portfolio_replay_outdate(ids bigint[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO portfolio_keptreplay AS kept (portfolio_id, version)
    SELECT id, 1 FROM portfolio_portfolio WHERE id = ANY(ids) ORDER BY id
    ON CONFLICT (portfolio_id) DO UPDATE SET version = kept.version + 1, state_version = NULL, state = NULL;
$$;

CREATE FUNCTION portfolio_replay_on_portfolio_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO portfolio_keptreplay AS kept (portfolio_id, version) SELECT id, 0 FROM new_rows ORDER BY id
    ON CONFLICT (portfolio_id) DO UPDATE SET version = kept.version + 1, state_version = NULL, state = NULL;
    RETURN NULL;
END $$;

CREATE FUNCTION portfolio_replay_on_portfolio_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM portfolio_replay_outdate(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE n.base_currency <> o.base_currency));
    RETURN NULL;
END $$;

CREATE FUNCTION portfolio_replay_on_transaction_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM portfolio_replay_outdate(ARRAY(SELECT DISTINCT portfolio_id FROM new_rows));
    ELSIF TG_OP = 'UPDATE' THEN
        PERFORM portfolio_replay_outdate(ARRAY(
            SELECT portfolio_id FROM old_rows UNION SELECT portfolio_id FROM new_rows));
    ELSE
        PERFORM portfolio_replay_outdate(ARRAY(SELECT DISTINCT portfolio_id FROM old_rows));
    END IF;
    RETURN NULL;
END $$;

-- A TRUNCATE fires no trigger of the writes: every portfolio's replay is outdated.
CREATE FUNCTION portfolio_replay_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({LOCK_SPACE}, 0);
    PERFORM portfolio_replay_outdate(ARRAY(SELECT id FROM portfolio_portfolio));
    RETURN NULL;
END $$;

-- An account's tracks_cash changes what every transaction in it moves of cash, in whichever portfolio. The
-- advisory lock marks the shared write in flight (see above).
CREATE FUNCTION portfolio_replay_on_account_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE n.tracks_cash <> o.tracks_cash) THEN
        PERFORM pg_advisory_xact_lock_shared({LOCK_SPACE}, 0);
        PERFORM portfolio_replay_outdate(ARRAY(
            SELECT DISTINCT t.portfolio_id FROM portfolio_transaction t
            JOIN new_rows n ON n.id = t.account_id JOIN old_rows o ON o.id = n.id
            WHERE n.tracks_cash <> o.tracks_cash));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION portfolio_replay_on_instrument_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n JOIN old_rows o ON o.id = n.id WHERE n.currency <> o.currency) THEN
        PERFORM pg_advisory_xact_lock_shared({LOCK_SPACE}, 0);
        PERFORM portfolio_replay_outdate(ARRAY(
            SELECT DISTINCT t.portfolio_id FROM portfolio_transaction t
            JOIN new_rows n ON n.id = t.instrument_id JOIN old_rows o ON o.id = n.id
            WHERE n.currency <> o.currency));
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION portfolio_replay_on_fx_write() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    since date;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT min(date) INTO since FROM new_rows;
    ELSIF TG_OP = 'UPDATE' THEN
        -- A rate written again unchanged (each FX refresh sends its last stored day again) changes nothing.
        SELECT min(least(o.date, n.date)) INTO since FROM old_rows o JOIN new_rows n ON n.id = o.id
        WHERE (o.base, o.quote, o.date, o.rate) IS DISTINCT FROM (n.base, n.quote, n.date, n.rate);
    ELSE
        SELECT min(date) INTO since FROM old_rows;
    END IF;
    IF since IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock_shared({LOCK_SPACE}, 0);
        PERFORM portfolio_replay_outdate(ARRAY(
            SELECT DISTINCT portfolio_id FROM portfolio_transaction WHERE date >= since));
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER portfolio_replay_on_portfolio_insert AFTER INSERT ON portfolio_portfolio
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_portfolio_insert();
CREATE TRIGGER portfolio_replay_on_portfolio_update AFTER UPDATE ON portfolio_portfolio
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_portfolio_update();
CREATE TRIGGER portfolio_replay_on_transaction_insert AFTER INSERT ON portfolio_transaction
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_transaction_write();
CREATE TRIGGER portfolio_replay_on_transaction_update AFTER UPDATE ON portfolio_transaction
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_transaction_write();
CREATE TRIGGER portfolio_replay_on_transaction_delete AFTER DELETE ON portfolio_transaction
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_transaction_write();
CREATE TRIGGER portfolio_replay_on_transaction_truncate AFTER TRUNCATE ON portfolio_transaction
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_truncate();
CREATE TRIGGER portfolio_replay_on_account_update AFTER UPDATE ON portfolio_account
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_account_update();
CREATE TRIGGER portfolio_replay_on_instrument_update AFTER UPDATE ON prices_instrument
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_instrument_update();
CREATE TRIGGER portfolio_replay_on_fx_insert AFTER INSERT ON prices_fxrate
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_fx_write();
CREATE TRIGGER portfolio_replay_on_fx_update AFTER UPDATE ON prices_fxrate
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_fx_write();
CREATE TRIGGER portfolio_replay_on_fx_delete AFTER DELETE ON prices_fxrate
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_fx_write();
CREATE TRIGGER portfolio_replay_on_fx_truncate AFTER TRUNCATE ON prices_fxrate
    FOR EACH STATEMENT EXECUTE FUNCTION portfolio_replay_on_truncate();

INSERT INTO portfolio_keptreplay (portfolio_id, version) SELECT id, 0 FROM portfolio_portfolio;
"""

_TRIGGERS = [*((f"portfolio_replay_on_portfolio_{op}", "portfolio_portfolio") for op in ("insert", "update")),
             *((f"portfolio_replay_on_transaction_{op}", "portfolio_transaction")
               for op in ("insert", "update", "delete", "truncate")),
             ("portfolio_replay_on_account_update", "portfolio_account"),
             ("portfolio_replay_on_instrument_update", "prices_instrument"),
             *((f"portfolio_replay_on_fx_{op}", "prices_fxrate") for op in ("insert", "update", "delete", "truncate"))]
_FUNCTIONS = ["portfolio_replay_on_portfolio_insert()", "portfolio_replay_on_portfolio_update()",
              "portfolio_replay_on_transaction_write()", "portfolio_replay_on_truncate()",
              "portfolio_replay_on_account_update()", "portfolio_replay_on_instrument_update()",
              "portfolio_replay_on_fx_write()", "portfolio_replay_outdate(bigint[])"]
UNBUMP = "".join([*(f"DROP TRIGGER IF EXISTS {name} ON {table};\n" for name, table in _TRIGGERS),
                  *(f"DROP FUNCTION IF EXISTS {function};\n" for function in _FUNCTIONS)])


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            with schema_editor.connection.cursor() as cursor:
                cursor.execute(sql)  # no parameters: the statements go as one simple query
    return run


class Migration(migrations.Migration):

    dependencies = [
        ("portfolio", "0008_default_accounts"),
        ("prices", "0010_price_series_revision_covered"),
    ]

    operations = [
        migrations.CreateModel(
            name="KeptReplay",
            fields=[
                ("portfolio", models.OneToOneField(db_constraint=False,
                                                   on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                   related_name="kept", serialize=False,
                                                   to="portfolio.portfolio")),
                ("version", models.BigIntegerField(db_default=0, default=0)),
                ("state_version", models.BigIntegerField(null=True)),
                ("state", models.TextField(null=True)),
            ],
        ),
        migrations.RunPython(_on_postgres(BUMP), _on_postgres(UNBUMP)),
    ]
