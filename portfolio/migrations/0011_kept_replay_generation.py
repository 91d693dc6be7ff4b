# Each kept-replay row's generation: a number the row is given as it is made, never handed out again.
#
# A row's `version` counts the writes to its portfolio's replay inputs from 0, and starts again with a new row: a
# portfolio deleted (its row with it) whose id comes back, or a row deleted by hand and made again by the next write
# (migration 0009), counts 0, 1, ... anew. A process keeping in its memory what it read at a version
# (portfolio/cash.py portfolio_transactions_reload: the chart worker's transactions) would take the rows of that
# version for the new ones (review r31). With the generation, (generation, version) is never the same for two
# different states of a portfolio's inputs. The sequence belongs to no column, so no TRUNCATE ... RESTART IDENTITY
# or test flush restarts it (as the price series' revisions, prices/0009). Not in the model: only the database
# gives it, and only raw SQL reads it (portfolio/kept.py replay_version_get). Postgres only, as the triggers.

from importlib import import_module

from django.db import migrations

_KEPT_REPLAY = import_module("portfolio.migrations.0009_keptreplay")

ADD = """
CREATE SEQUENCE portfolio_keptreplay_generation_seq;
ALTER TABLE portfolio_keptreplay ADD COLUMN generation bigint NOT NULL
    DEFAULT nextval('portfolio_keptreplay_generation_seq');
"""
DROP = """
ALTER TABLE portfolio_keptreplay DROP COLUMN generation;
DROP SEQUENCE portfolio_keptreplay_generation_seq;
"""


class Migration(migrations.Migration):

    dependencies = [("portfolio", "0010_kept_replay_shared_writes_read_committed")]

    operations = [migrations.RunPython(_KEPT_REPLAY._on_postgres(ADD), _KEPT_REPLAY._on_postgres(DROP))]
