# A write of a row shared by portfolios (an FX rate, an instrument's currency, an account's cash tracking; a
# TRUNCATE of the transactions or the rates) must run under READ COMMITTED, or it is refused.
#
# Its trigger (migration 0009) finds the portfolios it concerns among the transactions it can see. Under READ
# COMMITTED that is every transaction committed when its statement started, and the in-flight mark covers those
# committed later. A REPEATABLE READ or SERIALIZABLE transaction sees only what was committed when it began: a
# portfolio's trade committed after that, and its replay kept by a read before the shared write's trigger ran, were
# missed for good — the replay of the old rate served as current (review r4, RELIABILITY row 36). Such a writer
# cannot outdate what its snapshot does not show, not even by outdating every portfolio (one made since is not
# among them), so the trigger refuses the write, with a message saying why, instead of leaving a replay that lies.
#
# Each of those triggers' functions is the same as in 0009 but for the line that takes the mark, which now calls
# portfolio_replay_shared_write_begin(): the check, then the mark.

import re
from importlib import import_module

from django.db import migrations

_KEPT_REPLAY = import_module("portfolio.migrations.0009_keptreplay")
_LOCK = f"PERFORM pg_advisory_xact_lock_shared({_KEPT_REPLAY.LOCK_SPACE}, 0);"
_SHARED = ["portfolio_replay_on_truncate", "portfolio_replay_on_account_update",
           "portfolio_replay_on_instrument_update", "portfolio_replay_on_fx_write"]

BEGIN = f"""
CREATE FUNCTION portfolio_replay_shared_write_begin() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'this write outdates kept replays and must run under READ COMMITTED, not %',
            current_setting('transaction_isolation')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Its snapshot would not see the transactions committed since it began: run it in a '
                         'READ COMMITTED transaction (Postgres''s default).';
    END IF;
    {_LOCK}
END $$;
"""


def _as_in_0009(name: str) -> str:
    """The function as migration 0009 created it, to be created again over the current one."""
    found = re.search(rf"CREATE FUNCTION {name}\(\).*?END \$\$;\n", _KEPT_REPLAY.BUMP, re.S)
    return found.group(0).replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


CHECKED = BEGIN + "".join(
    _as_in_0009(name).replace(_LOCK, "PERFORM portfolio_replay_shared_write_begin();") for name in _SHARED)
UNCHECKED = "".join(map(_as_in_0009, _SHARED)) + "DROP FUNCTION IF EXISTS portfolio_replay_shared_write_begin();\n"


class Migration(migrations.Migration):

    dependencies = [("portfolio", "0009_keptreplay")]

    # 0009's runner: its SQL on Postgres only, as one simple query.
    operations = [migrations.RunPython(_KEPT_REPLAY._on_postgres(CHECKED), _KEPT_REPLAY._on_postgres(UNCHECKED))]
