"""Reads of portfolios, transactions and valued holdings.

Valuation costs a constant number of queries whatever the number of holdings: the transactions
(as plain rows), their instruments, and the instruments' latest closes.
"""

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from portfolio.holdings import ZERO, positions_compute
from portfolio.models import Portfolio, Transaction
from prices.fx import FxTable
from prices.models import Instrument
from prices.selectors import prices_latest_get
from prices.stale import price_stale


def portfolio_list(*, user: AbstractBaseUser) -> QuerySet[Portfolio]:
    return Portfolio.objects.filter(owner=user).select_related("benchmark")


def portfolio_get(*, user: AbstractBaseUser, portfolio_id: int) -> Portfolio | None:
    """The user's portfolio, or None: another user's portfolio does not exist for this user."""
    return Portfolio.objects.filter(owner=user, pk=portfolio_id).select_related("benchmark").first()


def transaction_list(*, portfolio: Portfolio) -> QuerySet[Transaction]:
    return Transaction.objects.filter(portfolio=portfolio).select_related("instrument").order_by("-date", "-id")


@dataclass(frozen=True)
class Holding:
    """One position. Costs, gains and values are in the portfolio's base currency; `price` and
    `previous_close` are as quoted, in the instrument's own currency."""

    instrument: Instrument
    quantity: Decimal
    average_cost: Decimal
    cost_basis: Decimal
    realized_gain: Decimal
    dividends: Decimal
    fees: Decimal
    price: Decimal | None
    price_as_of: date | None
    previous_close: Decimal | None
    # No price, or older than the last close its exchange's calendar says should exist.
    stale: bool
    # Base-currency units per unit of the instrument's currency on the price's date.
    fx_rate: Decimal | None = Decimal(1)
    # A rate needed to convert it (on a trade date or the price date) is not stored yet.
    fx_missing: bool = False

    @property
    def market_value(self) -> Decimal | None:
        if self.price is None or self.fx_rate is None or self.fx_missing:
            return None
        return self.quantity * self.price * self.fx_rate

    @property
    def unrealized_gain(self) -> Decimal | None:
        value = self.market_value
        return value - self.cost_basis if value is not None else None

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
    total_cost: Decimal
    realized_gain: Decimal
    dividends: Decimal
    fees: Decimal
    unpriced_count: int
    fx_missing_count: int = 0

    @property
    def stale_holdings(self) -> list[Holding]:
        return [h for h in self.holdings if h.stale]

    @property
    def prices_as_of(self) -> date | None:
        """The newest price date among the holdings."""
        return max((h.price_as_of for h in self.holdings if h.price_as_of), default=None)

    @property
    def unrealized_gain(self) -> Decimal:
        return self.total_value - sum((h.cost_basis for h in self.holdings if h.market_value is not None), ZERO)

    def weight(self, holding: Holding) -> Decimal | None:
        if holding.market_value is None or not self.total_value:
            return None
        return holding.market_value / self.total_value


@dataclass(frozen=True)
class TransactionRow:
    """The fields valuation replays, as plain values: no model instance per transaction."""

    instrument_id: int
    type: str
    date: date
    quantity: Decimal
    price: Decimal
    fee: Decimal
    currency: str


def portfolio_valuation_get(*, portfolio: Portfolio, now: datetime | None = None) -> Valuation:
    now = now or timezone.now()
    transactions = [
        TransactionRow(*row)
        for row in Transaction.objects.filter(portfolio=portfolio)
        .order_by("date", "id")
        .values_list("instrument_id", "type", "date", "quantity", "price", "fee", "currency")
    ]
    instruments = Instrument.objects.in_bulk({tx.instrument_id for tx in transactions})
    fx = FxTable(
        target=portfolio.base_currency,
        currencies={tx.currency for tx in transactions} | {i.currency for i in instruments.values()},
    )
    converted, fx_missing = transactions_in_base_currency(transactions, fx)
    positions = positions_compute(converted)
    latest = prices_latest_get(instrument_ids=positions.keys())

    open_holdings: list[Holding] = []
    closed: list[Holding] = []
    for instrument_id, position in positions.items():
        price = latest.get(instrument_id)
        instrument = instruments[instrument_id]
        fx_rate = fx.rate(instrument.currency, price.date) if price else None
        holding = Holding(
            instrument=instrument,
            quantity=position.quantity,
            average_cost=position.average_cost,
            cost_basis=position.cost_basis,
            realized_gain=position.realized_gain,
            dividends=position.dividends,
            fees=position.fees,
            price=price.close if price else None,
            price_as_of=price.date if price else None,
            previous_close=price.previous_close if price else None,
            stale=price_stale(mic=instrument.exchange_mic, price_date=price.date if price else None, now=now),
            fx_rate=fx_rate,
            fx_missing=instrument_id in fx_missing or (price is not None and fx_rate is None),
        )
        (open_holdings if position.quantity > 0 else closed).append(holding)

    open_holdings.sort(key=lambda h: (h.market_value is None, -(h.market_value or ZERO), h.instrument.symbol))
    all_holdings = open_holdings + closed
    return Valuation(
        holdings=open_holdings,
        closed=closed,
        total_value=sum((h.market_value for h in open_holdings if h.market_value is not None), ZERO),
        total_cost=sum((h.cost_basis for h in open_holdings if not h.fx_missing), ZERO),
        realized_gain=sum((h.realized_gain for h in all_holdings if not h.fx_missing), ZERO),
        dividends=sum((h.dividends for h in all_holdings if not h.fx_missing), ZERO),
        fees=sum((h.fees for h in all_holdings if not h.fx_missing), ZERO),
        unpriced_count=sum(1 for h in open_holdings if h.price is None),
        fx_missing_count=sum(1 for h in open_holdings if h.fx_missing),
    )


def transactions_in_base_currency(transactions: list, fx: FxTable) -> tuple[list, set[int]]:
    """Copies of the transactions with price and fee converted at the rate of their own date, and
    the instruments for which a rate was missing (their amounts are left unconverted and flagged,
    never converted at 1). Quantities never change, so position checks are unaffected."""
    converted: list[Transaction] = []
    missing: set[int] = set()
    for tx in transactions:
        rate = fx.rate(tx.currency, tx.date)
        if rate is None:
            missing.add(tx.instrument_id)
            converted.append(tx)
        elif rate == 1:
            converted.append(tx)
        else:
            converted.append(replace(tx, price=tx.price * rate, fee=tx.fee * rate))
    return converted, missing


def instrument_ids_of_user(*, user: AbstractBaseUser) -> set[int]:
    """Every instrument in any of the user's portfolios."""
    return set(Transaction.objects.filter(portfolio__owner=user).values_list("instrument_id", flat=True).distinct())


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
    their portfolios) or compare a portfolio with it (its benchmark). For everyone else it does not
    exist: prices would tell what others hold."""
    if not user.is_authenticated:
        return False
    if instrument.owner_id is not None:
        return instrument.owner_id == user.pk
    if user.is_staff:
        return True
    return (
        Transaction.objects.filter(portfolio__owner=user, instrument=instrument).exists()
        or Portfolio.objects.filter(owner=user, benchmark=instrument).exists()
    )
