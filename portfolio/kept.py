"""A portfolio's replay, kept: what replaying its transactions gives a valuation, stored so the next valuation
need not replay them again (docs/holdings.md, "Kept replays").

Replaying is most of what a valuation costs from nothing cached: reading every transaction, adding the cash
trades they imply (portfolio/cash.py) and running them through the average-cost engine, with the FX rates of
each one's date. What comes out depends on none of today's prices: each instrument's position (quantity, cost,
realized gain, dividends, fees), its latest trade as a price observation, its splits, the cash each account
holds, each account's quantities, and the cash instruments. The valuation values that with today's closes and
rates (portfolio/selectors.py), whether it replayed or read it here.

Kept in portfolio.KeptReplay with the portfolio's replay `version` it was made at. The database adds to that
version in the transaction of every write that changes what the replay reads (migration 0009 lists them), so a
kept replay serves only while nothing it was made from has changed. A read that replays stores what it made
only while the portfolio is still at the version it read before its inputs: a write committed in between leaves
it unstored. The shared cash instruments are not watched: a read checks them (cash_ids_hold). A write of a row
shared by portfolios (an FX rate, an instrument's currency, an account's cash tracking) finds the portfolios it
concerns among the committed transactions; while one is in flight, a read stores nothing (SHARED_WRITE_LOCK), and
a read in a transaction above READ COMMITTED, whose snapshot may predate such a write, stores nothing either. A
shared write in such a transaction is refused (migration 0010): its snapshot could not show every portfolio it
concerns.
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial
from typing import NamedTuple

from django.db import DatabaseError, connection, transaction

from core.kept_bytes import KeptBytes
from portfolio.holdings import TRADE, Observation, observation_new
from portfolio.models import KeptReplay, Portfolio, Transaction
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
    """What replaying a portfolio's transactions gives, in the base currency of the replay. Read only: one decoded
    from the kept text serves every read of that text in the process (replay_decoded), and a valuation hands its
    `cash` and `account_quantities` to its callers as they are."""

    # instrument id -> its position, in the order of each one's first transaction (cash ones included)
    positions: dict
    # instrument id -> [its latest trade as an observation in its own currency]: the positions held only
    trades: dict[int, list[Observation]]
    splits: dict[int, list[tuple[date, Decimal]]]  # instrument id -> its splits as (date, ratio), oldest first
    cash: dict[tuple[int | None, str], Decimal]  # (account id, currency) -> cash held (CashExpansion.balances)
    account_quantities: dict[int | None, dict[int, Decimal]]  # Valuation.account_quantities
    cash_ids: dict[str, int]  # currency -> its cash instrument
    base_currency: str  # what its amounts are in


# The replay as text: a line of the layout and base currency, then one line per part, each a run of
# tab-separated fields, a fixed number per record (POSITION_FIELDS and 3 for the others, 2 for the cash
# instruments). Every Decimal as its exact string (NaN and -0 included); an account id of None as "". No field can
# hold a tab or a newline (numbers, ISO dates, currency codes). A line of fields is read back by slicing it
# (fields[k::n]) and converting each slice in one map: 500 positions decode in well under a millisecond.
_POSITION_FIELDS = 7


def replay_encode(replay: Replay) -> str:
    """The replay as text, for replay_decode."""
    return "\n".join((
        f"{LAYOUT}\t{replay.base_currency}",
        "\t".join(f"{p.instrument_id}\t{p.quantity}\t{p.cost_basis}\t{p.realized_total}\t{p.dividends_total}\t"
                  f"{p.fees_total}\t{int(p.fx_missing)}" for p in replay.positions.values()),
        "\t".join(f"{pk}\t{o.date.isoformat()}\t{o.price}" for pk, (o,) in replay.trades.items()),
        "\t".join(f"{pk}\t{day.isoformat()}\t{ratio}" for pk, rows in replay.splits.items() for day, ratio in rows),
        "\t".join(f"{_account_text(account)}\t{currency}\t{amount}"
                  for (account, currency), amount in replay.cash.items()),
        # An account holding nothing yet (no instrument) as one record of empty fields.
        "\t".join(f"{_account_text(account)}\t{pk}\t{quantity}" for account, held in replay.account_quantities.items()
                  for pk, quantity in (held.items() or [("", "")])),
        "\t".join(f"{currency}\t{pk}" for currency, pk in replay.cash_ids.items()),
    ))


def replay_decode(text: str) -> Replay | None:
    """The replay replay_encode wrote; None when it was written under another LAYOUT."""
    head, _, body = text.partition("\n")
    layout, _, base_currency = head.partition("\t")
    if layout != str(LAYOUT):
        return None
    positions, trades, splits, cash, accounts, cash_ids = (line.split("\t") if line else [] for line in
                                                           body.split("\n"))
    ids = list(map(int, positions[0::_POSITION_FIELDS]))
    decimals = [list(map(Decimal, positions[k::_POSITION_FIELDS])) for k in range(1, _POSITION_FIELDS - 1)]
    day = date.fromisoformat
    split_rows: dict[int, list[tuple[date, Decimal]]] = {}
    for pk, on, ratio in zip(map(int, splits[0::3]), map(day, splits[1::3]), map(Decimal, splits[2::3]), strict=True):
        split_rows.setdefault(pk, []).append((on, ratio))
    held: dict[int | None, dict[int, Decimal]] = {}
    for account, pk, quantity in zip(accounts[0::3], accounts[1::3], accounts[2::3], strict=True):
        quantities = held.setdefault(_account_of(account), {})
        if pk:
            quantities[int(pk)] = Decimal(quantity)
    return Replay(
        positions=dict(zip(ids, map(_position_new, zip(ids, *decimals, map("1".__eq__, positions[6::_POSITION_FIELDS]),
                                                         strict=True)), strict=True)),
        trades={pk: [observation_new((on, price, TRADE))] for pk, on, price in
                zip(map(int, trades[0::3]), map(day, trades[1::3]), map(Decimal, trades[2::3]), strict=True)},
        splits=split_rows,
        cash={(_account_of(account), currency): Decimal(amount)
              for account, currency, amount in zip(cash[0::3], cash[1::3], cash[2::3], strict=True)},
        account_quantities=held,
        cash_ids=dict(zip(cash_ids[0::2], map(int, cash_ids[1::2]), strict=True)),
        base_currency=base_currency,
    )


# What a decoded replay and the text it is kept by hold in memory per character of the text: the Decimals, tuples and
# dicts take 7.5 (500 holdings of long converted amounts) to 13 (short amounts) bytes a character, 24 for a lone
# position, and the text one more.
_DECODED_BYTES_PER_CHARACTER = 16
# The replays this process decoded last, by portfolio, with the text each was decoded from (KEPT_REPLAYS_MB), small
# ones too: one read path for every portfolio.
_DECODED = KeptBytes(setting="KEPT_REPLAYS_MB", min_bytes=0)


def replay_decoded(*, portfolio_id: int, text: str) -> Replay | None:
    """replay_decode of a portfolio's kept text, decoded once per process: the next read of the same text (the
    replay unchanged since: every read after a price refresh) is answered with the same Replay, decoding a 500-holding
    replay costing more than a millisecond. Kept by the text itself, not by its version, so a replay is reused only
    where decoding would make the same one. A Replay is shared by the reads it serves: nothing may change it."""
    found = _DECODED.get(portfolio_id)
    if found is not None and found[0] == text:  # a length check, then one memory comparison: microseconds
        return found[1]
    replay = replay_decode(text)
    if replay is not None:
        _DECODED.put(portfolio_id, text, replay, size=len(text) * _DECODED_BYTES_PER_CHARACTER)
    return replay


def _account_text(account: int | None) -> str:
    return "" if account is None else str(account)


def _account_of(text: str) -> int | None:
    return int(text) if text else None


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

# The advisory lock (two keys) a trigger on a row shared by portfolios holds, shared, until its transaction ends
# (migration 0009): a shared write in flight, which may have missed a portfolio whose transaction was not yet
# committed. Held by another session: the replay read now is not stored.
SHARED_WRITE_LOCK = (7216, 0)
_SHARED_WRITE_IN_FLIGHT = (
    "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = {} AND objid = {} AND objsubid = 2 "
    "AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
).format(*SHARED_WRITE_LOCK)

# The portfolio's replay version, its base currency, when one is kept at that version the replay, and whether a
# shared write is in flight: one statement, so they are of one snapshot. A read sends it before any of the
# replay's inputs (the module's docstring says why). No row (deleted by hand): version None, nothing kept.
KEPT_SQL = (f"SELECT CASE WHEN {_SHARED_WRITE_IN_FLIGHT} THEN NULL ELSE k.version END, p.base_currency, "
            f"CASE WHEN k.state_version = k.version THEN k.state END "
            f"FROM {_PORTFOLIOS} p LEFT JOIN {_KEPT} k ON k.portfolio_id = p.id WHERE p.id = %s")

# The portfolio's replay version with its kept row's generation (migration 0011: a row made again, or its version
# set back, is a new generation), for a process keeping in its memory what it read of the replay's inputs (the chart
# worker's transactions: portfolio/cash.py portfolio_transactions_reload). NULL when rows read after it may be newer
# than it says without it moving: a shared write in flight (see SHARED_WRITE_LOCK), or a transaction's snapshot
# older than the statement (above READ COMMITTED, as for _STORE_SQL below).
_VERSION_SQL = (f"SELECT NOT {_SHARED_WRITE_IN_FLIGHT} "
                "AND current_setting('transaction_isolation') = 'read committed', "
                f"generation, version FROM {_KEPT} WHERE portfolio_id = %s")


def replay_version_get(*, portfolio_id: int) -> tuple[int, int] | None:
    """The portfolio's replay version, as (its kept row's generation, its version): the database adds to the version
    in the transaction of every write of what the replay reads (migration 0009), and a row made again or set back
    has a new generation (0011), so rows read after it are the same rows for as long as it reads the same. None when
    it cannot say so: off Postgres (no triggers), no kept row, or a write in flight that may have missed it."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(_VERSION_SQL, [portfolio_id])
        row = cursor.fetchone()
    return (row[1], row[2]) if row is not None and row[0] else None


# Stored only while the portfolio is still at that version (else it would never serve): a store that finds the
# version unchanged had inputs of that version (no write outdating them was committed before it), and replaces
# whatever was kept at it (a replay of another LAYOUT, that the read could not use). Not while a shared write is
# in flight (see SHARED_WRITE_LOCK). A row locked by a writer (outdating it, not yet committed) is skipped, not
# waited for: the read answers, unstored. Only under READ COMMITTED, where each statement sees what was committed
# when it started: the mark is looked for now, and a transaction's older snapshot (REPEATABLE READ, SERIALIZABLE)
# may have missed a shared write committed since, whose mark is gone.
_STORE_SQL = (f"UPDATE {_KEPT} SET state = %s, state_version = version WHERE portfolio_id = "
              f"(SELECT portfolio_id FROM {_KEPT} WHERE portfolio_id = %s AND version = %s "
              f"AND NOT {_SHARED_WRITE_IN_FLIGHT} AND current_setting('transaction_isolation') = 'read committed' "
              "FOR UPDATE SKIP LOCKED)")


def portfolio_write_lock(*, portfolio_id: int) -> None:
    """Lock a portfolio for a write of its data, in the caller's transaction: its kept replay's row, then its own
    row (what serialises two writers of one portfolio). Every writer takes the two in that order — a trade's
    trigger, and a shared write's (an FX rate, an instrument's currency, an account's cash tracking), lock the
    kept rows, whose writers then bump the portfolios' data versions — so none holds a portfolio's row (or a
    transaction's) while it waits for its kept row: no two wait on each other."""
    portfolios_write_lock(portfolio_ids=[portfolio_id])


def portfolios_write_lock(*, portfolio_ids) -> None:
    """portfolio_write_lock of several portfolios (a row moved from one to another): the kept rows in portfolio
    order, then the portfolios' rows in portfolio order."""
    ids = sorted(set(portfolio_ids) - {None})
    list(KeptReplay.objects.select_for_update().filter(portfolio_id__in=ids).order_by("pk").values_list("pk"))
    list(Portfolio.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk"))


def replays_lock_since(*, since: date) -> None:
    """Lock the kept rows of every portfolio with a transaction on or after `since`, in portfolio order: those an
    FX write of that day and later outdates (migration 0009). One upsert fires a trigger for the rates it updates,
    then one for those it inserts, each locking the rows of its own earliest day in order; a later day's first
    took rows above an earlier day's, which another writer locking in order could hold (review r3). Postgres only,
    as the triggers."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT portfolio_id FROM {_KEPT} WHERE portfolio_id IN (SELECT portfolio_id FROM "
                       f"{Transaction._meta.db_table} WHERE date >= %s) ORDER BY portfolio_id FOR UPDATE", [since])


def replay_store(*, portfolio_id: int, version: int | None, replay: Replay) -> None:
    """Keep the replay made from inputs read after the portfolio's replay version was `version`. A read stores
    it in passing: a failure to (the portfolio deleted meanwhile) costs only the next read a replay, and inside
    a caller's transaction it is a savepoint's, never the caller's."""
    if version is None:
        return
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), connection.cursor() as cursor:
            cursor.execute(_STORE_SQL, [replay_encode(replay), portfolio_id, version])
    except DatabaseError:
        logger.warning("kept replay of portfolio %s not stored", portfolio_id, exc_info=True)
