"""A portfolio's replay, kept: what replaying its transactions gives a valuation, stored so the next valuation
need not replay them again (docs/holdings.md, "Kept replays").

Replaying is most of what a valuation costs from nothing cached: reading every transaction, adding the cash
trades they imply (portfolio/cash.py) and running them through the average-cost engine, with the FX rates of
each one's date. What comes out depends on none of today's prices: each instrument's position (quantity, cost,
realized gain, dividends, fees), its latest trade as a price observation, its splits, the cash each account
holds, each account's quantities, and the cash instruments. The valuation values that with today's closes and
rates (portfolio/selectors.py), whether it replayed or read it here.

Kept in portfolio.KeptReplay with the portfolio's `replay_version` it was made at. The database adds to that
version in the transaction of every write that changes what the replay reads (migration 0009 lists them), so a
kept replay serves only while nothing it was made from has changed. A read that replays stores what it made,
with the version it read before its inputs: if a write came in between, the version stored is already an old
one and the replay never serves. The shared cash instruments are not watched: a read checks them (cash_ids_hold).
"""

import json
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial
from typing import NamedTuple

from django.db import DatabaseError, connection, transaction

from portfolio.holdings import TRADE, Observation, observation_new
from portfolio.models import KeptReplay, Portfolio
from prices.models import cash_symbol
from prices.selectors import InstrumentRow

logger = logging.getLogger(__name__)

# What a kept replay's text is laid out as, and what the replay's code computes: a replay kept under another
# layout is replayed again. Add 1 whenever the replay (portfolio/cash.py, the engine in portfolio/holdings.py,
# selectors._replay) would give another answer for the same transactions.
LAYOUT = 1


class KeptPosition(NamedTuple):
    """A replayed position as a valuation reads it (selectors._Replayed's fields of the same names)."""

    instrument_id: int
    quantity: Decimal
    cost_basis: Decimal  # NaN: an amount it depends on had no rate
    realized_total: Decimal
    dividends_total: Decimal
    fees_total: Decimal
    fx_missing: bool


_position_new = partial(tuple.__new__, KeptPosition)


@dataclass(frozen=True)
class Replay:
    """What replaying a portfolio's transactions gives, in the base currency of the replay."""

    # instrument id -> its position, in the order of each one's first transaction (cash ones included)
    positions: dict
    # instrument id -> [its latest trade as an observation in its own currency]: the positions held only
    trades: dict[int, list[Observation]]
    splits: dict[int, list[tuple[date, Decimal]]]  # instrument id -> its splits as (date, ratio), oldest first
    cash: dict[tuple[int | None, str], Decimal]  # (account id, currency) -> cash held (CashExpansion.balances)
    account_quantities: dict[int | None, dict[int, Decimal]]  # Valuation.account_quantities
    cash_ids: dict[str, int]  # currency -> its cash instrument
    base_currency: str  # what its amounts are in


def replay_encode(replay: Replay) -> str:
    """The replay as text: plain JSON, every Decimal as its exact string (NaN and -0 included)."""
    return json.dumps({
        "layout": LAYOUT,
        "positions": [[p.instrument_id, str(p.quantity), str(p.cost_basis), str(p.realized_total),
                       str(p.dividends_total), str(p.fees_total), p.fx_missing] for p in replay.positions.values()],
        "trades": [[pk, o.date.isoformat(), str(o.price)] for pk, (o,) in replay.trades.items()],
        "splits": [[pk, [[day.isoformat(), str(ratio)] for day, ratio in rows]] for pk, rows in replay.splits.items()],
        "cash": [[account, currency, str(amount)] for (account, currency), amount in replay.cash.items()],
        "accounts": [[account, [[pk, str(quantity)] for pk, quantity in held.items()]]
                     for account, held in replay.account_quantities.items()],
        "cash_ids": replay.cash_ids,
        "base_currency": replay.base_currency,
    }, separators=(",", ":"))


def replay_decode(text: str) -> Replay | None:
    """The replay replay_encode wrote; None when it was written under another LAYOUT."""
    kept = json.loads(text)
    if kept.get("layout") != LAYOUT:
        return None
    day = date.fromisoformat
    return Replay(
        positions={row[0]: _position_new((row[0], Decimal(row[1]), Decimal(row[2]), Decimal(row[3]),
                                          Decimal(row[4]), Decimal(row[5]), row[6]))
                   for row in kept["positions"]},
        trades={pk: [observation_new((day(on), Decimal(price), TRADE))] for pk, on, price in kept["trades"]},
        splits={pk: [(day(on), Decimal(ratio)) for on, ratio in rows] for pk, rows in kept["splits"]},
        cash={(account, currency): Decimal(amount) for account, currency, amount in kept["cash"]},
        account_quantities={account: {pk: Decimal(quantity) for pk, quantity in held}
                            for account, held in kept["accounts"]},
        cash_ids=kept["cash_ids"],
        base_currency=kept["base_currency"],
    )


def cash_ids_hold(replay: Replay, instruments: dict[int, InstrumentRow]) -> bool:
    """Whether each cash instrument the replay names is still that currency's (an admin may delete one, and the
    next read makes it again under another id): the one thing the replay reads that no trigger watches."""
    for currency, pk in replay.cash_ids.items():
        instrument = instruments.get(pk)
        if (instrument is None or instrument.owner_id is not None or instrument.currency != currency
                or instrument.symbol != cash_symbol(currency)):
            return False
    return True


_PORTFOLIOS, _KEPT = Portfolio._meta.db_table, KeptReplay._meta.db_table

# The portfolio's replay version, its base currency and, when one is kept at that version, the replay: one
# statement, so the three are of one snapshot. A read sends it before any of the replay's inputs (the module's
# docstring says why).
KEPT_SQL = (f"SELECT p.replay_version, p.base_currency, k.state FROM {_PORTFOLIOS} p "
            f"LEFT JOIN {_KEPT} k ON k.portfolio_id = p.id AND k.version = p.replay_version WHERE p.id = %s")

# Stored only while the portfolio is still at that version (else it would never serve), never over a newer one.
_STORE_SQL = (f"INSERT INTO {_KEPT} (portfolio_id, version, state) SELECT id, replay_version, %s "
              f"FROM {_PORTFOLIOS} WHERE id = %s AND replay_version = %s "
              f"ON CONFLICT (portfolio_id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state "
              f"WHERE {_KEPT}.version < EXCLUDED.version")


def replay_store(*, portfolio_id: int, version: int, replay: Replay) -> None:
    """Keep the replay made from inputs read after the portfolio's replay_version was `version`. A read stores
    it in passing: a failure to (the portfolio deleted meanwhile) costs only the next read a replay, and inside
    a caller's transaction it is a savepoint's, never the caller's."""
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            cursor.execute(_STORE_SQL, [replay_encode(replay), portfolio_id, version])
    except DatabaseError:
        logger.warning("kept replay of portfolio %s not stored", portfolio_id, exc_info=True)
