# Each kept-replay row's generation: a number the row is given as it is made, never handed out again, and given
# anew whenever the row's version goes down.
#
# A row's `version` counts the writes to its portfolio's replay inputs, and only its triggers (migration 0009) are
# meant to move it, up. But it can count again from below: a portfolio deleted (its row with it) whose id comes
# back, or a row deleted by hand and made again by the next write, counts 0, 1, ... anew; a fixture loaded
# (`loaddata` of an older dump of the model) or an UPDATE by hand sets it back. A process keeping in its memory
# what it read at a version (portfolio/cash.py portfolio_transactions_reload: the chart worker's transactions)
# would take the rows of that version for the new ones (reviews r31, r32), and a replay stored at it would serve
# the same (the fixture's `state` at the fixture's version, for the rows written since). With the generation —
# new on every row made, new when an UPDATE lowers the version (that UPDATE's stored replay dropped too) —
# (generation, version) is never the same for two different states of a portfolio's inputs; and a row inserted
# holds no stored replay, whatever the INSERT says (a fixture's).
#
# The sequence belongs to no column, so no TRUNCATE ... RESTART IDENTITY or test flush restarts it (as the price
# series' revisions, prices/0009), and undoing this migration keeps it: done again, it goes on from where it was.
# Not in the model: only the database gives it, and only raw SQL reads it (portfolio/kept.py replay_version_get).
# Postgres only, as the triggers.

from importlib import import_module

from django.db import migrations

_KEPT_REPLAY = import_module("portfolio.migrations.0009_keptreplay")

ADD = """
CREATE SEQUENCE IF NOT EXISTS portfolio_keptreplay_generation_seq;
ALTER TABLE portfolio_keptreplay ADD COLUMN generation bigint NOT NULL
    DEFAULT nextval('portfolio_keptreplay_generation_seq');

-- A row made holds no replay (only a read stores one, by UPDATE, at the version it read: a row inserted with one,
-- as a fixture's, would serve it for whatever rows the portfolio has); an UPDATE lowering the version makes the row
-- a new generation, with no replay.
CREATE FUNCTION portfolio_keptreplay_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.state := NULL;
        NEW.state_version := NULL;
    ELSIF NEW.version < OLD.version THEN
        NEW.generation := nextval('portfolio_keptreplay_generation_seq');
        NEW.state := NULL;
        NEW.state_version := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER portfolio_keptreplay_guard BEFORE INSERT OR UPDATE OF version ON portfolio_keptreplay
    FOR EACH ROW EXECUTE FUNCTION portfolio_keptreplay_guard();
"""
DROP = """
DROP TRIGGER portfolio_keptreplay_guard ON portfolio_keptreplay;
DROP FUNCTION portfolio_keptreplay_guard();
ALTER TABLE portfolio_keptreplay DROP COLUMN generation;
"""


class Migration(migrations.Migration):

    dependencies = [("portfolio", "0010_kept_replay_shared_writes_read_committed")]

    operations = [migrations.RunPython(_KEPT_REPLAY._on_postgres(ADD), _KEPT_REPLAY._on_postgres(DROP))]
