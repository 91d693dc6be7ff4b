"""Reads of portfolios, transactions and valued holdings.

Valuation costs a constant number of queries whatever the number of holdings: on Postgres the replay of the
transactions kept (portfolio/kept.py) and its instruments with their latest closes; when no replay is kept, the
transactions (as plain rows), their instruments with their latest closes (one query), and the FX rates when a
currency differs from the base. The trades themselves are price observations too (portfolio.holdings).
"""

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from operator import attrgetter
from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from portfolio.cash import PortfolioTransactions, portfolio_transactions_load
from portfolio.holdings import (
    CLOSE,
    EXACT_SUMS,
    ZERO,
    Observation,
    Position,
    RateLookup,
    observation_new,
    portfolio_value_compute,
    position_apply_in_base,
    price_in_currency,
    split_shared,
    splits_of,
    trade_observations,
)
from portfolio.kept import KEPT_SQL, Replay, cash_ids_hold, replay_decoded, replay_store
from portfolio.models import Account, Portfolio, Transaction, TransactionType, WatchlistItem
from prices.fx import FxTable
from prices.models import AssetClass, Instrument
from prices.refresh.stale import price_stale
from prices.selectors import InstrumentRow, LatestPrice, instruments_with_latest_get


def portfolio_list(*, user: AbstractBaseUser) -> QuerySet[Portfolio]:
    return Portfolio.objects.filter(owner=user).select_related("benchmark")


def portfolio_get(*, user: AbstractBaseUser, portfolio_id: int) -> Portfolio | None:
    """The user's portfolio, or None: another user's portfolio does not exist for this user."""
    return Portfolio.objects.filter(owner=user, pk=portfolio_id).select_related("benchmark").first()


def transaction_list(*, portfolio: Portfolio) -> QuerySet[Transaction]:
    return (Transaction.objects.filter(portfolio=portfolio).select_related("instrument", "account")
            .order_by("-date", "-id"))


def account_list(*, portfolio: Portfolio) -> QuerySet[Account]:
    """Oldest first: the first is the default account."""
    return Account.objects.filter(portfolio=portfolio).order_by("id")


class PortfolioHeader(NamedTuple):
    """What a valuation and the dashboard read of the portfolio itself."""

    pk: int
    name: str
    base_currency: str


class AccountRow(NamedTuple):
    """An account as the dashboard shows it (the fields of Account it reads, by the same names)."""

    pk: int
    name: str
    platform: str
    currency: str
    tracks_cash: bool


_PORTFOLIOS, _ACCOUNTS = Portfolio._meta.db_table, Account._meta.db_table
_HEADER_SQL = (f"SELECT p.name, p.base_currency, a.id, a.name, a.platform, a.currency, a.tracks_cash "
               f"FROM {_PORTFOLIOS} p LEFT JOIN {_ACCOUNTS} a ON a.portfolio_id = p.id WHERE p.id = %s ORDER BY a.id")
# The day's buys and sells at a price (a gift's 0 says nothing of what was paid), with their instrument's currency.
_TRADES_OF_DAY_SQL = (
    f"SELECT t.instrument_id, t.type, t.quantity, t.price, t.currency, i.currency "
    f"FROM {Transaction._meta.db_table} t JOIN {Instrument._meta.db_table} i ON i.id = t.instrument_id "
    f"WHERE t.portfolio_id = %s AND t.date = %s AND t.type IN ('{TransactionType.BUY}', '{TransactionType.SELL}') "
    f"AND t.price > 0")


class Holding(NamedTuple):
    """One position. Costs, gains and values are in the portfolio's base currency; `price` and
    `previous_close` are as quoted, in the instrument's own currency, per share of today.

    A NamedTuple, immutable, made once per position valued: a frozen dataclass of these fields cost twice as
    much to build (each field set through object.__setattr__), 1 ms of a cold dashboard of 500 holdings."""

    instrument: InstrumentRow
    quantity: Decimal
    # None when an amount it depends on could not be converted yet (no FX rate on its date).
    cost_basis: Decimal | None
    realized_gain: Decimal  # of the sells whose amounts could be converted
    dividends: Decimal
    fees: Decimal
    # The latest observation: a stored close or, when newer (or there is no close), the portfolio's latest
    # trade; None when there is neither.
    price: Decimal | None
    price_as_of: date | None
    previous_close: Decimal | None  # the close before `price` when `price` is a close
    # No price, or older than the last close its exchange's calendar says should exist.
    stale: bool
    # Base-currency units per unit of the instrument's currency today.
    fx_rate: Decimal | None
    # None: no price, or no rate to convert it — left out of the totals, never valued at 0.
    market_value: Decimal | None
    # A rate needed to convert it (on a transaction's date, or today) is not stored yet.
    fx_missing: bool = False
    price_source: str | None = None  # "close" or "trade"

    @property
    def average_cost(self) -> Decimal | None:
        if self.cost_basis is None:
            return None
        return self.cost_basis / self.quantity if self.quantity else ZERO

    @property
    def unrealized_gain(self) -> Decimal | None:
        if self.market_value is None or self.cost_basis is None:
            return None
        return self.market_value - self.cost_basis

    @property
    def unrealized_gain_percent(self) -> Decimal | None:
        gain = self.unrealized_gain
        if gain is None or not self.cost_basis:
            return None
        return gain / self.cost_basis * 100


@dataclass(frozen=True)
class Valuation:
    holdings: list[Holding]  # open positions, largest market value first
    closed: list[Holding]  # fully sold positions, for realized gains and dividends
    total_value: Decimal
    total_cost: Decimal  # open positions whose cost is known
    unrealized_gain: Decimal  # market value − cost of the positions valued whose cost is known
    realized_gain: Decimal
    dividends: Decimal
    fees: Decimal
    unpriced_count: int
    fx_missing_count: int = 0
    # (account id, currency) -> the cash it holds, in that currency (portfolio/cash.py): accounts that track
    # cash only.
    cash: dict[tuple[int | None, str], Decimal] = field(default_factory=dict)
    # account id -> instrument id -> the quantity held in that account (splits apply in every account);
    # account None: rows a bulk tool wrote without one, shown in the default account.
    account_quantities: dict[int | None, dict[int, Decimal]] = field(default_factory=dict)
    # instrument id -> (shares bought today less those sold, what they cost less what the sold ones brought, at
    # the trade prices in the instrument's currency): the dashboard's day change counts them from those prices.
    # The dashboard's valuation only (portfolio_accounts_valuation_get).
    traded_today: dict[int, tuple[Decimal, Decimal]] = field(default_factory=dict)
    # instrument id -> (its previous close, counted from as an open holding's is: when its latest close is of today;
    # today's rate) of each position closed (sold out), but cash's: the day change of the shares it sold today.
    closed_day_basis: dict[int, tuple[Decimal | None, Decimal | None]] = field(default_factory=dict)

    @property
    def stale_holdings(self) -> list[Holding]:
        return [h for h in self.holdings if h.stale]

    @property
    def prices_as_of(self) -> date | None:
        """The newest price date among the holdings but cash (worth 1 in its currency every day, "priced" on the
        day it last moved: a deposit today is no price observed today)."""
        return max((h.price_as_of for h in self.holdings if h.price_as_of and h.instrument.asset_class != _CASH),
                   default=None)

    def weight(self, holding: Holding) -> Decimal | None:
        if holding.market_value is None or not self.total_value:
            return None
        return holding.market_value / self.total_value


# Holding made from a tuple of all its fields, in order, by tuple.__new__ (as transaction_row_new): a sixth of
# the cost of its constructor with keywords, once per position valued.
_holding_new = partial(tuple.__new__, Holding)
_CASH = AssetClass.CASH.value  # the plain string: compared once per holding


@dataclass
class _Replayed(Position):
    """One instrument's position replayed in the base currency (position_apply_in_base: its own realized gain,
    dividends and fees are the last transaction's) and what its transactions add up to: exact sums of the known
    amounts. One object per instrument, not a position and a record of its sums: fewer made and fewer reads."""

    realized_total: Decimal = ZERO
    dividends_total: Decimal = ZERO
    fees_total: Decimal = ZERO
    fx_missing: bool = False


def portfolio_valuation_get(*, portfolio: Portfolio | PortfolioHeader, now: datetime | None = None) -> Valuation:
    """The portfolio valued at the end of today with what is known (portfolio.holdings: stored closes and
    the portfolio's own trades are the price observations; today's FX rates), in `portfolio.base_currency`.
    On Postgres the replay of its transactions is the one kept (portfolio/kept.py) while it is current."""
    kept = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(KEPT_SQL, [portfolio.pk])
            kept = cursor.fetchone()
    if kept is None or kept[1] != portfolio.base_currency:
        # No replay kept elsewhere; or the portfolio deleted since the caller read it (an empty valuation, as
        # always), or its base currency changed since: valued in the caller's, as the rest of its answer, and
        # nothing kept (a replay in another base currency than the version's is never stored).
        return _valuation_of(portfolio_transactions_load(portfolio_id=portfolio.pk, latest=True),
                             base_currency=portfolio.base_currency, now=now)
    return _valuation_kept(portfolio.pk, *kept, now=now)


def portfolio_accounts_valuation_get(*, portfolio_id: int, now: datetime | None = None
                                    ) -> tuple[PortfolioHeader, list[AccountRow], Valuation]:
    """The portfolio's name and base currency, its accounts (oldest, the default, first) and its valuation
    (portfolio_valuation_get): what the dashboard computes on every cache miss. On Postgres the header is one
    plain query sent with the kept replay's, in one round trip (two ORM reads, or a round trip of its own, cost
    more than Postgres answering it). Raises Portfolio.DoesNotExist for a portfolio deleted meanwhile."""
    if connection.vendor != "postgresql":  # the ORM converts what another backend stores (booleans as 0/1)
        name, base_currency = Portfolio.objects.values_list("name", "base_currency").get(pk=portfolio_id)
        header = PortfolioHeader(portfolio_id, name, base_currency)
        accounts = [AccountRow(*row) for row in Account.objects.filter(portfolio_id=portfolio_id).order_by("id")
                    .values_list("id", "name", "platform", "currency", "tracks_cash")]
        valuation = portfolio_valuation_get(portfolio=header, now=now)
        trades = Transaction.objects.filter(
            portfolio_id=portfolio_id, date=timezone.localdate(now), price__gt=0,
            type__in=(TransactionType.BUY, TransactionType.SELL),
        ).values_list("instrument_id", "type", "quantity", "price", "currency", "instrument__currency")
        return header, accounts, replace(valuation, traded_today=_traded_today(trades))
    # The kept replay's statement first: its version is read before anything the replay reads.
    kept_rows, rows, trades = _reads_together((KEPT_SQL, [portfolio_id]), (_HEADER_SQL, [portfolio_id]),
                                              (_TRADES_OF_DAY_SQL, [portfolio_id, timezone.localdate(now)]))
    kept = kept_rows[0] if kept_rows else None
    if kept is None or not rows:
        raise Portfolio.DoesNotExist(f"no portfolio {portfolio_id}")
    # The base currency of the kept replay's snapshot: the one the valuation is in.
    header = PortfolioHeader(portfolio_id, rows[0][0], kept[1])
    accounts = [AccountRow(*row[2:]) for row in rows if row[2] is not None]
    valuation = _valuation_kept(portfolio_id, *kept, now=now)
    return header, accounts, replace(valuation, traded_today=_traded_today(trades))


def _traded_today(trades) -> dict[int, tuple[Decimal, Decimal]]:
    """Valuation.traded_today of the day's trades (instrument id, type, quantity, price, currency, the instrument's
    currency). An instrument traded in another currency than its own (beyond its units: GBP for GBp) is left
    out: its day change stays counted from the previous close, rather than made of a price at a rate."""
    traded: dict[int, tuple[Decimal, Decimal]] = {}
    foreign: set[int] = set()
    for instrument_id, kind, quantity, price, currency, instrument_currency in trades:
        price = price_in_currency(price, source=currency, target=instrument_currency, on=date.min, rate=_no_rate)
        if price is None:
            foreign.add(instrument_id)
            continue
        sign = 1 if kind == TransactionType.BUY else -1
        shares, cost = traded.get(instrument_id, (ZERO, ZERO))
        traded[instrument_id] = (shares + sign * quantity, cost + sign * quantity * price)
    return {pk: bought for pk, bought in traded.items() if pk not in foreign}


def _no_rate(currency: str, on: date) -> None:
    return None


def _reads_together(*reads: tuple[str, list]) -> list[list[tuple]]:
    """The rows of each read `(sql, params)`, in order, sent in one round trip: Django's psycopg cursor binds
    parameters client-side, which allows several statements in one execute. A server-bound statement is
    prepared, one command at a time: a round trip each then."""
    with connection.cursor() as cursor:
        if connection.settings_dict["OPTIONS"].get("server_side_binding"):
            results = []
            for sql, params in reads:
                cursor.execute(sql, params)
                results.append(cursor.fetchall())
            return results
        cursor.execute("; ".join(sql for sql, _ in reads), [param for _, params in reads for param in params])
        results = [cursor.fetchall()]
        while cursor.nextset():
            results.append(cursor.fetchall())
        return results


def _valuation_kept(portfolio_id: int, version: int | None, base_currency: str, text: str | None, *,
                    now: datetime | None) -> Valuation:
    """The valuation from the kept replay (`text`, kept at `version`, the portfolio's replay version read
    before anything else) when there is one still good, else from a replay of the transactions, then kept."""
    now = now or timezone.now()
    replay = replay_decoded(portfolio_id=portfolio_id, text=text) if text is not None else None
    if replay is not None and replay.base_currency == base_currency:
        ids = replay.positions.keys() | replay.cash_ids.values()
        instruments, latest = instruments_with_latest_get(ids=ids)
        if len(instruments) == len(ids) and cash_ids_hold(replay, instruments):
            # Today's rates only: what valuing the replay converts at.
            fx = FxTable(target=base_currency, currencies={i.currency for i in instruments.values()},
                         on=timezone.localdate(now))
            return _valuation_value(replay, instruments=instruments, latest=latest, rate=fx.rate, now=now)
    return _valuation_of(portfolio_transactions_load(portfolio_id=portfolio_id, latest=True),
                         base_currency=base_currency, now=now, kept_as=(portfolio_id, version))


def _valuation_of(loaded: PortfolioTransactions, *, base_currency: str, now: datetime | None,
                  kept_as: tuple[int, int | None] | None = None) -> Valuation:
    """The valuation from a replay of the loaded transactions; with `kept_as` (portfolio id, version read before
    them), the replay kept too (replay_store)."""
    replay, fx = _replay(loaded, base_currency=base_currency)
    if kept_as is not None:
        replay_store(portfolio_id=kept_as[0], version=kept_as[1], replay=replay)
    return _valuation_value(replay, instruments=loaded.instruments, latest=loaded.latest, rate=fx.rate, now=now)


def _replay(loaded: PortfolioTransactions, *, base_currency: str) -> tuple[Replay, FxTable]:
    """The portfolio's transactions and their cash trades replayed in the base currency (what of a valuation
    depends on no price of today: portfolio/kept.py), and the FX rates it read."""
    own, accounts, expansion = loaded.own, loaded.accounts, loaded.expansion
    instruments, cash_ids, transactions = loaded.instruments, loaded.cash_ids, loaded.transactions
    fx = FxTable(
        target=base_currency,
        currencies=set(map(_currency_of, transactions)) | {i.currency for i in instruments.values()},
    )
    totals: dict[int, _Replayed] = {}
    add = EXACT_SUMS.add
    buy, sell, split, dividend = (str(kind) for kind in (TransactionType.BUY, TransactionType.SELL,
                                                         TransactionType.SPLIT, TransactionType.DIVIDEND))
    rate_of = fx.rate
    # A rate that is the same every day is not looked up per transaction.
    fixed_rate = fx.fixed_rates().get
    # The instruments bought or sold, in the order of their first trade, and whether one was split before it:
    # what _one_accounts_quantities needs to read the accounts' quantities off the positions.
    traded: dict[int, None] = {}
    split_before_trade = False
    # Each transaction's fields read once: this loop runs once per transaction of the portfolio.
    for tx in transactions:
        instrument_id, kind, _, _, _, _, currency = tx
        position = totals.get(instrument_id)
        if position is None:
            position = totals[instrument_id] = _Replayed(instrument_id)
        if kind == split:  # no amounts, nothing to convert (its fee, if any, counts below)
            rate = None
            split_before_trade = split_before_trade or instrument_id not in traded
        else:
            rate = fixed_rate(currency)
            if rate is None and (rate := rate_of(currency, tx.date)) is None:
                position.fx_missing = True  # and its amounts are left out below: NaN, never converted at 1
        fee = position_apply_in_base(position, tx, rate=rate).fee
        # The position's realized gain and dividends are this transaction's (see position_apply_in_base).
        if kind == buy:
            traded[instrument_id] = None
        elif kind == sell:
            traded[instrument_id] = None
            if not (gain := position.realized_gain).is_nan():
                position.realized_total = add(position.realized_total, gain)
        elif kind == dividend and not (amount := position.dividends).is_nan():
            position.dividends_total = add(position.dividends_total, amount)
        if fee and not fee.is_nan():
            position.fees_total = add(position.fees_total, fee)

    currencies = {pk: instrument.currency for pk, instrument in instruments.items()}
    held = {pk for pk, p in totals.items() if p.quantity}
    # Each held instrument's latest trade: what values it when it has no newer close (observation_on).
    trades = trade_observations(transactions, currencies=currencies, rate=fx.rate, latest_only=True, of=held)
    return Replay(
        positions=totals,
        trades=trades,
        splits=splits_of(transactions),
        cash=expansion.balances,
        account_quantities=(_one_accounts_quantities(accounts, traded, totals, cash_ids)
                            if not split_before_trade and _all_one(accounts)
                            else account_quantities_compute(own, accounts)),
        cash_ids=cash_ids,
        base_currency=base_currency,
    ), fx


def _valuation_value(replay: Replay, *, instruments: dict[int, InstrumentRow], latest: dict[int, LatestPrice],
                     rate: RateLookup, now: datetime | None) -> Valuation:
    """The replayed positions valued at the end of today: with the latest closes, or a later trade of the
    portfolio's own, at today's rates (`rate`, to the replay's base currency)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    add = EXACT_SUMS.add
    totals, splits, cash_ids = replay.positions, replay.splits, replay.cash_ids
    currencies = {pk: instruments[pk].currency for pk in totals}
    held = {pk: (p.quantity, p.cost_basis) for pk, p in totals.items() if p.quantity}
    closes = {pk: observation_new((p.date, p.close, CLOSE)) for pk, p in latest.items()}
    value = portfolio_value_compute(held=held, closes=closes, trades=replay.trades, splits=splits,
                                    currencies=currencies, rate=rate, on=today)

    open_holdings: list[Holding] = []
    closed: list[Holding] = []
    # The totals of the holdings listed, added as they are listed, with no pass of their own: exact sums
    # (EXACT_SUMS), the same in any order while the terms fit its 80 digits (amounts of ~40 digits on either side
    # of the point at once would round, and then the order shows only far below the cent the totals are shown in).
    realized_gain = dividends = fees = ZERO
    closed_day_basis: dict[int, tuple[Decimal | None, Decimal | None]] = {}
    valued_positions = value.positions
    # (exchange, price date) -> stale: asked of the calendar once, not once per holding.
    stale_of: dict[tuple[str, date | None], bool] = {}
    for instrument_id, position in totals.items():
        instrument = instruments[instrument_id]
        valued = valued_positions.get(instrument_id)
        observation = valued.observation if valued else None
        price_as_of = observation.date if observation else None
        # Cash is worth 1 in its currency every day: never stale.
        stale = instrument.asset_class != _CASH
        if stale:
            stale = stale_of.get(key := (instrument.exchange_mic, price_as_of))
            if stale is None:
                stale = stale_of[key] = price_stale(mic=instrument.exchange_mic, price_date=price_as_of, now=now)
        previous_close = _previous_close(latest.get(instrument_id), observation, splits.get(instrument_id, ()),
                                         today)
        holding = _holding_new((  # Holding's fields, in order
            instrument,  # instrument
            position.quantity,  # quantity
            None if (cost := position.cost_basis).is_nan() else cost,  # cost_basis
            position.realized_total,  # realized_gain
            position.dividends_total,  # dividends
            position.fees_total,  # fees
            observation.price if observation else None,  # price
            price_as_of,  # price_as_of
            previous_close,  # previous_close
            stale,  # stale
            valued.fx_rate if valued else None,  # fx_rate
            valued.value if valued else None,  # market_value
            position.fx_missing or (observation is not None and valued.fx_rate is None),  # fx_missing
            observation.source if observation else None,  # price_source
        ))
        if position.quantity > ZERO:
            open_holdings.append(holding)
        elif instrument_id not in cash_ids.values() or position.dividends_total:  # spent cash is no closed position
            closed.append(holding)
            if instrument.asset_class != _CASH:
                closed_day_basis[instrument_id] = _closed_day_basis(latest.get(instrument_id), instrument, splits.get(
                    instrument_id, ()), rate=rate, today=today)
        # Listed or not, what a position realized counts: a foreign currency's cash spent to the last cent realized
        # its exchange gain or loss as surely as one spent to the last but one (as the chart's performance counts it).
        realized_gain = add(realized_gain, position.realized_total)
        dividends = add(dividends, position.dividends_total)
        fees = add(fees, position.fees_total)

    return Valuation(
        holdings=_largest_first(open_holdings),
        closed=closed,
        total_value=value.total_value,
        total_cost=value.total_cost,
        unrealized_gain=value.unrealized_gain,
        realized_gain=realized_gain,
        dividends=dividends,
        fees=fees,
        unpriced_count=sum(1 for h in open_holdings if h.price is None),
        fx_missing_count=sum(1 for h in open_holdings if h.fx_missing),
        cash=replay.cash,
        account_quantities=replay.account_quantities,
        closed_day_basis=closed_day_basis,
    )


def _closed_day_basis(latest, instrument: InstrumentRow, splits, *, rate: RateLookup,
                      today: date) -> tuple[Decimal | None, Decimal | None]:
    """Valuation.closed_day_basis of one closed position. Its shares sold today count from the previous close as
    an open holding's do: when today's close is its price (a close wins its day over the day's trades); else there
    is none to count them from (only a trade of today made and unmade the same day needs none)."""
    previous = None
    if latest is not None and latest.date >= today:
        previous = _previous_close(latest, observation_new((latest.date, latest.close, CLOSE)), splits, today)
    return previous, rate(instrument.currency, today)


def _all_one(accounts: list[int | None]) -> bool:
    """Whether every transaction is of the same account (or none is): a portfolio's usual case."""
    return accounts.count(accounts[0]) == len(accounts) if accounts else True


def _one_accounts_quantities(accounts: list[int | None], traded: dict[int, None], totals: dict[int, _Replayed],
                             cash_ids: dict[str, int]) -> dict[int | None, dict[int, Decimal]]:
    """account_quantities_compute's answer when every transaction is of one account, read off the replay's
    positions instead of replaying the portfolio's transactions a second time.

    The same numbers: in one account, an instrument's quantity there is its position's, made by the same
    operations in the same order (a buy adds, a sell subtracts, a split multiplies), as long as no split came
    before its first trade (a position multiplies its zero; the account has no quantity yet). `traded`: the
    instruments bought or sold, in the order of their first trade; those of the cash instruments are the cash
    trades of the replay, which no transaction of the portfolio names (prices.models.cash_symbol)."""
    cash = set(cash_ids.values())
    quantities = {pk: totals[pk].quantity for pk in traded if pk not in cash}
    return {accounts[0]: quantities} if quantities else {}


def _largest_first(holdings: list[Holding]) -> list[Holding]:
    """The holdings by market value, largest first, then by symbol; those without a value last, by symbol.

    Two stable sorts of plain keys (symbol, then value descending: reverse keeps the symbol order of equal
    values): a third less than one sort by a tuple of both made per holding, whose Decimal negation and
    tuple comparisons cost most of it (500 holdings on every cold dashboard)."""
    valued = [h for h in holdings if h.market_value is not None]
    unvalued = [h for h in holdings if h.market_value is None]
    valued.sort(key=_symbol_of)
    valued.sort(key=_market_value_of, reverse=True)
    unvalued.sort(key=_symbol_of)
    return valued + unvalued


def _symbol_of(holding: Holding) -> str:
    return holding.instrument.symbol


_market_value_of = attrgetter("market_value")
_currency_of = attrgetter("currency")


def account_quantities_compute(transactions, accounts) -> dict[int | None, dict[int, Decimal]]:
    """The quantity of each instrument held in each account: buys and sells move the account's own; a split
    multiplies the instrument's quantity in every account (it happens to the shares wherever they are)."""
    held: dict[int | None, dict[int, Decimal]] = {}
    buy, sell, split = TransactionType.BUY.value, TransactionType.SELL.value, TransactionType.SPLIT.value
    # Once per transaction: each field read once, and no empty dict made for setdefault to throw away.
    for tx, account in zip(transactions, accounts, strict=True):
        kind = tx.type
        if kind in (buy, sell):
            quantities = held.get(account)
            if quantities is None:
                quantities = held[account] = {}
            instrument_id = tx.instrument_id
            if kind == buy:
                quantities[instrument_id] = quantities.get(instrument_id, ZERO) + tx.quantity
            else:
                quantities[instrument_id] = quantities.get(instrument_id, ZERO) - tx.quantity
        elif kind == split:
            instrument_id = tx.instrument_id
            shared = split_shared({account: quantities[instrument_id] for account, quantities in held.items()
                                   if instrument_id in quantities}, tx.quantity)
            for account, quantity in shared.items():
                held[account][instrument_id] = quantity
    return held


def _previous_close(latest, observation: Observation | None, splits, today: date) -> Decimal | None:
    """The close before today's price, on the same share basis, when that price is the latest close.

    Every split after the previous close's day divides it, up to today: those after the latest close divide the
    price too (observation_on), and one between the two closes — on the latest close's own day, or on a day
    without a close before it (a weekend's) — only the previous close, which was before it."""
    if latest is None or latest.previous_close is None or observation is None or observation.source != CLOSE:
        return None
    previous = latest.previous_close
    for day, ratio in splits:
        if latest.previous_date < day <= today:
            previous /= ratio
    return previous


def instrument_ids_of_user(*, user: AbstractBaseUser) -> set[int]:
    """Every instrument in any of the user's portfolios or on their watchlist."""
    held = set(Transaction.objects.filter(portfolio__owner=user, instrument__isnull=False)
               .values_list("instrument_id", flat=True).distinct())
    return held | set(WatchlistItem.objects.filter(user=user).values_list("instrument_id", flat=True))


def transaction_list_of_instrument(*, user: AbstractBaseUser, instrument: Instrument) -> QuerySet[Transaction]:
    """The user's transactions in one instrument, across their portfolios, newest first."""
    return (
        Transaction.objects.filter(portfolio__owner=user, instrument=instrument)
        .select_related("portfolio")
        .order_by("-date", "-id")
    )


def instrument_readable_by(*, user: AbstractBaseUser, instrument: Instrument) -> bool:
    """Whether the user may see the instrument and its stored prices: a manual instrument that belongs
    to someone only by its owner; any other by staff and by those who hold it (a transaction in one of
    their portfolios), compare a portfolio with it (its benchmark) or follow it (their watchlist). For
    everyone else it does not exist: prices would tell what others hold."""
    if not user.is_authenticated:
        return False
    if instrument.owner_id is not None:
        return instrument.owner_id == user.pk
    return user.is_staff or Instrument.objects.filter(instruments_readable_q(user=user), pk=instrument.pk).exists()


def instruments_readable_q(*, user: AbstractBaseUser) -> Q:
    """The instruments `instrument_readable_by` lets the user read, as a filter (for lists: search)."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    if user.is_staff:
        return Q(owner__isnull=True) | Q(owner=user)
    used = (Q(pk__in=Transaction.objects.filter(portfolio__owner=user).values("instrument_id"))
            | Q(pk__in=Portfolio.objects.filter(owner=user, benchmark__isnull=False).values("benchmark_id"))
            | Q(pk__in=WatchlistItem.objects.filter(user=user).values("instrument_id")))
    return Q(owner=user) | (Q(owner__isnull=True) & used)
