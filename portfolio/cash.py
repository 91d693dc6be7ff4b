"""Cash: what each account holds in each currency, and how it counts (docs/holdings.md, "Accounts and cash").

Only accounts that track cash hold any (Account.tracks_cash). In one that does not — a portfolio's default
account migrated from before accounts — every buy and fee is money brought in and every sell and dividend
money taken out, as before; its interest is income paid out, like a dividend.

Cash is valued and performs as a holding: each currency's cash is a position in that currency's cash
instrument (asset class `cash`, prices.models.cash_symbol), worth 1 in its currency every day, and every
movement of cash is a trade of it at 1. cash_expand adds those trades to a portfolio's transactions where
they are loaded, so the one valuation, the charts and the performance figures count cash with no rule of
their own, and the flow rules give exactly the external flows:

- a deposit is cash bought (money in), a withdrawal cash sold (money out);
- a sell's proceeds and a dividend (net of the tax withheld) are cash bought: the stock's money out and the
  cash's money in cancel, the money stays in the portfolio;
- a buy (with its fee) and a standalone fee are cash sold, up to what the account holds in that currency:
  the stock's money in and the cash's money out cancel. What the account cannot cover is an implicit
  deposit of the shortfall (the cash never goes below zero), money in as every buy was before accounts —
  so a portfolio recorded without deposits keeps its net performance;
- interest is a dividend of the cash instrument (income, in the performance, not a flow) and cash bought.

On each day the movements that bring cash in (deposits, sells, dividends, interest) count before those that
take it out (buys, fees, withdrawals), whatever order they were entered in: a deposit and the buy it funds
on the same day never make an implicit deposit.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import compress
from operator import attrgetter, itemgetter

from django.db import connection

from portfolio.holdings import TRANSACTION_FIELDS, ZERO, TransactionLike, TransactionRow, transaction_row_new
from portfolio.kept import replay_version_get
from portfolio.models import CASH_TYPES, Account, Transaction, TransactionType
from prices.fx import currency_major
from prices.models import cash_symbol
from prices.selectors import InstrumentRow, LatestPrice, instruments_by_id_get, instruments_with_latest_get
from prices.services import cash_instruments_get_or_create

ONE = Decimal("1")
_BUY, _SELL, _DIVIDEND, _FEE = (kind.value for kind in (
    TransactionType.BUY, TransactionType.SELL, TransactionType.DIVIDEND, TransactionType.FEE))
_DEPOSIT, _WITHDRAWAL, _INTEREST = (kind.value for kind in (
    TransactionType.DEPOSIT, TransactionType.WITHDRAWAL, TransactionType.INTEREST))


class _CheckOnly(dict):
    def __missing__(self, code: str) -> int:
        return 0


def cash_currency(code: str) -> str:
    """The currency cash is kept in: the major unit (a GBp trade moves GBP)."""
    return currency_major(code)[0]

_INFLOWS = frozenset({_SELL, _DIVIDEND, _DEPOSIT, _INTEREST})
_type_of, _currency_of = attrgetter("type"), attrgetter("currency")


@dataclass(frozen=True)
class CashExpansion:
    transactions: list  # the portfolio's own (cash types replaced) and the cash trades, in date order
    balances: dict[tuple[int | None, str], Decimal]  # (account id, currency) -> cash held at the end
    # Withdrawals of more than the account held that day, as (the transaction, what it held): the services
    # refuse them (a withdrawal is never an implicit deposit's opposite); here they take what there is.
    overdrawn: list = field(default_factory=list)


def cash_expand(transactions: Sequence[TransactionLike], *, accounts: Sequence[int | None],
                tracked: Collection[int], cash_ids: Mapping[str, int] | None = None) -> CashExpansion:
    """The transactions (in date, then entry order) with the trades of cash that they imply.

    accounts: each transaction's account id, in the same order (None: written without one, by a bulk tool;
    it holds no cash); tracked: the accounts that track cash; cash_ids: the cash instrument of each
    currency moved (cash_currencies says which) — None for a replay that only checks the cash (the
    services' and the import's validation): its cash trades then name instrument 0.

    Each day's cash trades follow its own transactions: first those that bring cash in, then those that take
    it out, each in entry order."""
    if not tracked and len(accounts) == len(transactions) and CASH_TYPES.isdisjoint(map(_type_of, transactions)):
        # No account tracks cash and nothing only moves cash: no cash trade, nothing replaced (the loop below
        # would copy the transactions one by one; this scan of their types runs in C).
        return CashExpansion(list(transactions), {}, [])
    cash_ids = cash_ids if cash_ids is not None else _CheckOnly()
    expanded: list = []
    balances: dict[tuple[int | None, str], Decimal] = {}
    overdrawn: list = []
    # currency -> _cash_unit(currency): asked once per currency, not once per transaction.
    units: dict[str, tuple[str, Decimal | None]] = {}
    # The day's cash trades, added after its own transactions when the next day starts (and after the last).
    # A move that brings cash in adds to its balance at once: only the day's outflows read the balances, and they
    # count after every inflow of the day. Those that take cash out wait for the day's end, as (what they take,
    # the balance's key, the transaction).
    bought: list = []
    outflows: list[tuple[Decimal, tuple[int | None, str], TransactionLike]] = []
    append = expanded.append
    day = None
    # One pass. Each transaction's cash change (+ in, − out, in the major unit of its currency) is worked out
    # where it is met: a call and a currency_major per transaction were half of this function's cost.
    for tx, account in zip(transactions, accounts, strict=True):
        if tx.date != day:
            if bought:
                expanded += bought
                bought = []
            if outflows:
                _outflows_settle(day, outflows, balances, expanded, overdrawn, cash_ids)
                outflows = []
            day = tx.date
        kind = tx.type
        if kind in CASH_TYPES:
            if kind == _INTEREST:
                append(transaction_row_new((cash_ids[cash_currency(tx.currency)], _DIVIDEND, day, tx.quantity,
                                            tx.price, tx.fee, tx.currency)))
        else:
            append(tx)
        if account not in tracked:
            continue
        if kind == _BUY:
            change = -(tx.quantity * tx.price + tx.fee)
        elif kind in (_SELL, _DIVIDEND, _INTEREST):
            change = tx.quantity * tx.price - tx.fee
        elif kind == _DEPOSIT:
            change = tx.quantity * tx.price
        elif kind == _WITHDRAWAL:
            change = -(tx.quantity * tx.price)
        elif kind == _FEE:
            change = -tx.fee
        else:  # a split moves no cash
            continue
        unit = units.get(tx.currency)
        if unit is None:
            unit = units[tx.currency] = _cash_unit(tx.currency)
        currency, factor = unit
        if factor is not None:
            change *= factor
        if not change:
            continue
        if change > 0:
            key = (account, currency)
            balances[key] = balances.get(key, ZERO) + change
            bought.append(transaction_row_new((cash_ids[currency], _BUY, day, change, ONE, ZERO, currency)))
        else:
            outflows.append((-change, (account, currency), tx))
    if bought:
        expanded += bought
    if outflows:
        _outflows_settle(day, outflows, balances, expanded, overdrawn, cash_ids)
    return CashExpansion(expanded, balances, overdrawn)


def _cash_unit(code: str) -> tuple[str, Decimal | None]:
    """The currency cash in `code` is kept in, and how many of its units one of `code` is: None for exactly 1
    (Decimal("1"): a product by it is the same number, digits and exponent, so it is not made)."""
    major, factor = currency_major(code)
    return major, None if factor.as_tuple() == _UNIT else factor


_UNIT = ONE.as_tuple()


def _outflows_settle(day, outflows: list, balances: dict, expanded: list, overdrawn: list,
                     cash_ids: Mapping[str, int]) -> None:
    """The day's moves that take cash out, in entry order: each a sale of the cash its account holds, up to what
    it takes (the rest an implicit deposit); a withdrawal of more than that is `overdrawn`."""
    for out, key, tx in outflows:
        held = balances.get(key, ZERO)
        if not held:  # nothing to take (`out` is more than nothing): all of it an implicit deposit, or overdrawn
            if tx.type == _WITHDRAWAL:
                overdrawn.append((tx, held))
            continue
        if out > held and tx.type == _WITHDRAWAL:
            overdrawn.append((tx, held))
        if taken := min(held, out):
            balances[key] = held - taken
            expanded.append(transaction_row_new((cash_ids[key[1]], _SELL, day, taken, ONE, ZERO, key[1])))


def overdrawn_message(tx: TransactionLike, held: Decimal) -> str:
    """What a withdrawal beyond its account's cash is told (cash_expand's `overdrawn`)."""
    return (f"Withdrawing {(tx.quantity * tx.price).normalize():f} {tx.currency} on {tx.date.isoformat()} is more "
            f"than the {held.normalize():f} the account holds on that date.")


def cash_currencies(transactions: Sequence[TransactionLike], *, accounts: Sequence[int | None],
                    tracked: Collection[int]) -> set[str]:
    """The currencies whose cash instrument the transactions need: those something brings cash into an
    account tracking it (a buy or fee only takes cash there is, so buys alone hold none), and those interest
    is paid in (its income is that cash's, tracked or not)."""
    if not tracked and len(accounts) == len(transactions) and _INTEREST not in map(_type_of, transactions):
        # The common case, found in C (the lengths checked as the zip below checks them).
        return set()
    # Each (type, currency, account) once, found in C: a portfolio has thousands of transactions and a few of those.
    moving = set(zip(map(_type_of, transactions), map(_currency_of, transactions), accounts, strict=True))
    return {cash_currency(currency) for kind, currency, account in moving
            if kind == _INTEREST or (kind in _INFLOWS and account in tracked)}


@dataclass(frozen=True)
class PortfolioTransactions:
    """A portfolio's transactions as the valuation and the charts read them: its own (date, then entry
    order) with their cash trades, every instrument they name (cash included) and the accounts of its own."""

    own: list[TransactionRow]
    accounts: list[int | None]  # each own transaction's account, in the same order
    expansion: CashExpansion
    instruments: dict[int, InstrumentRow]
    cash_ids: dict[str, int]  # currency -> its cash instrument
    # With `latest`: the latest stored closes of the instruments (prices_latest_get) read with them.
    latest: dict[int, LatestPrice] | None = None
    # The portfolio's replay version read before the rows (portfolio/kept.py replay_version_get, with its kept row's
    # generation; None: not read, or unknown): the rows are the portfolio's for as long as it reads the same.
    version: tuple[int, int] | None = None

    @property
    def transactions(self) -> list:
        return self.expansion.transactions


# A portfolio's transactions in replay order (date, then entry) with each one's account and whether that
# account tracks cash; no account (a bulk tool's row) reads as None, None.
_TRANSACTIONS_SQL = (
    "SELECT {fields}, t.{account}, a.{tracks} FROM {transactions} t LEFT JOIN {accounts} a ON a.id = t.{account} "
    "WHERE t.{portfolio} = %s ORDER BY t.date, t.id"
).format(fields=", ".join(f"t.{Transaction._meta.get_field(name).column}" for name in TRANSACTION_FIELDS),
         account=Transaction._meta.get_field("account").column, tracks=Account._meta.get_field("tracks_cash").column,
         transactions=Transaction._meta.db_table, accounts=Account._meta.db_table,
         portfolio=Transaction._meta.get_field("portfolio").column)
# The parts of one of its rows: a TransactionRow's fields, then the account and whether it tracks cash.
_row_fields = itemgetter(slice(len(TRANSACTION_FIELDS)))
_row_account, _row_tracks = itemgetter(len(TRANSACTION_FIELDS)), itemgetter(len(TRANSACTION_FIELDS) + 1)
_row_instrument = itemgetter(TRANSACTION_FIELDS.index("instrument_id"))


def portfolio_transactions_load(*, portfolio_id: int, latest: bool = False) -> PortfolioTransactions:
    """Two queries (a third the first time a currency's cash appears): the transactions as value tuples,
    not model instances (2,000 of them cost 11-14 ms of CPU instead of 36), and their instruments with the
    cash instruments in one — with their latest closes when `latest` (what valuing today needs: a round
    trip fewer than asking for them apart). The first is fixed SQL on a plain cursor: it runs on every
    replay, and building it through the ORM cost more than Postgres answering it for a portfolio of 20
    holdings."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_TRANSACTIONS_SQL, [portfolio_id])
            rows = cursor.fetchall()
    else:  # the ORM converts what another backend stores (SQLite's decimals come back as floats)
        rows = list(Transaction.objects.filter(portfolio_id=portfolio_id).order_by("date", "id")
                    .values_list(*TRANSACTION_FIELDS, "account_id", "account__tracks_cash"))
    # Each pass over the rows through map and itemgetter: in C, no Python frame per row.
    own = list(map(transaction_row_new, map(_row_fields, rows)))
    accounts = list(map(_row_account, rows))
    tracked = set(compress(accounts, map(_row_tracks, rows)))
    currencies_moved = cash_currencies(own, accounts=accounts, tracked=tracked)
    ids = set(map(_row_instrument, rows))
    ids.discard(None)  # the cash types name no instrument
    instruments, closes, cash_ids = _instruments_read(ids=ids, currencies=currencies_moved, latest=latest)
    expansion = cash_expand(own, accounts=accounts, tracked=tracked, cash_ids=cash_ids)
    return PortfolioTransactions(own=own, accounts=accounts, expansion=expansion, instruments=instruments,
                                 cash_ids=cash_ids, latest=closes)


def portfolio_transactions_reload(*, portfolio_id: int, kept: PortfolioTransactions | None) -> PortfolioTransactions:
    """portfolio_transactions_load for a process keeping what it loaded: `kept` again, with its instruments read
    anew, while the portfolio's replay version is the one it was loaded at (no transaction, account's cash tracking
    or base currency written since: a new day's closes leave it so) and the shared cash instruments it names are
    still their currencies' (the one input no trigger watches, as for a kept replay: portfolio/kept.py); else
    loaded, with the version read before the rows. One query more than a load when it loads, two fewer (and no
    expansion of the cash trades) when it keeps."""
    version = replay_version_get(portfolio_id=portfolio_id)
    if kept is not None and version is not None and kept.version == version:
        instruments, _, cash_ids = _instruments_read(ids=kept.instruments.keys(), currencies=kept.cash_ids.keys(),
                                                     latest=False)
        if cash_ids == kept.cash_ids:
            return replace(kept, instruments=instruments)
    return replace(portfolio_transactions_load(portfolio_id=portfolio_id), version=version)


def _instruments_read(*, ids: Collection[int], currencies: Collection[str], latest: bool
                      ) -> tuple[dict[int, InstrumentRow], dict[int, LatestPrice] | None, dict[str, int]]:
    """The instruments of `ids` with the cash instrument of each of `currencies` (made the first time a currency's
    cash appears), their latest closes when `latest`, and each currency's cash instrument among them."""
    symbols = [cash_symbol(code) for code in currencies]
    if latest:
        instruments, closes = instruments_with_latest_get(ids=ids, shared_symbols=symbols)
    else:
        instruments, closes = instruments_by_id_get(ids=ids, shared_symbols=symbols), None
    cash_ids = {i.currency: i.pk for i in instruments.values()
                if i.owner_id is None and i.symbol == cash_symbol(i.currency)}
    if not currencies <= cash_ids.keys():  # a currency's first cash: its instrument is made once
        made = cash_instruments_get_or_create(currencies=set(currencies) - cash_ids.keys())
        instruments.update({i.pk: InstrumentRow.of(i) for i in made.values()})
        cash_ids.update({code: i.pk for code, i in made.items()})
    return instruments, closes, cash_ids
