"""Positions derived from transactions: the average-cost method, splits and realized gains; and their
valuation with what is known — the one Decimal valuation the dashboard, the chart and the performance
figures all use (docs/holdings.md states the conventions).

Pure computation over transaction-like objects, so the same code validates a write before it is
saved (services), values a portfolio when it is read (selectors) and values it on past days (charts).
"""

from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from fractions import Fraction
from functools import cache, partial, reduce
from itertools import filterfalse
from operator import sub
from typing import Any, NamedTuple, Protocol

from django.core.exceptions import ValidationError

from portfolio.models import TransactionType
from prices.fx import currency_major

ZERO = Decimal("0")
ONE = Decimal("1")
NAN = Decimal("NaN")  # an amount whose FX rate is unknown: it spreads through arithmetic, never counts as 0
CENT = Decimal("0.01")
# Sums of money run in this context: wide enough that adding the 28-digit products and quotients of the
# default context is exact, so a total is the same number whatever order its terms are added in (the
# dashboard adds per holding, the charts per day).
EXACT_SUMS = Context(prec=80)

# (currency code, day) -> base-currency units per unit of that currency on that day (latest rate on or
# before it), or None when no rate is known yet.
RateLookup = Callable[[str, date], Decimal | None]

# The types as plain strings: compared once per transaction replayed, where an enum member's look-up and
# comparison cost several times as much (the values are the same).
_BUY, _SELL, _SPLIT, _DIVIDEND, _FEE = (kind.value for kind in (
    TransactionType.BUY, TransactionType.SELL, TransactionType.SPLIT, TransactionType.DIVIDEND, TransactionType.FEE))


class TransactionLike(Protocol):
    """What valuation reads of a transaction: a model instance or a TransactionRow."""

    instrument_id: int  # None for a deposit, withdrawal or interest (portfolio/cash.py replaces them)
    type: str
    date: date
    quantity: Decimal
    price: Decimal
    fee: Decimal
    currency: str  # the currency of price and fee


# The same fields as plain values, for reads that replay many transactions (no model instance per row); a
# plain tuple because a chart replays tens of thousands of them and a frozen dataclass costs several times
# as much to build.
TransactionRow = NamedTuple("TransactionRow", list(TransactionLike.__annotations__.items()))
TRANSACTION_FIELDS = TransactionRow._fields
# transaction_row_new(fields): a TransactionRow made from a tuple of its fields by tuple.__new__, half the cost
# of the NamedTuple's own constructor. The records made once per transaction or position valued are made so:
# a cold dashboard of 2,000 transactions and 500 holdings makes thousands.
transaction_row_new = partial(tuple.__new__, TransactionRow)


@dataclass
class Position:
    instrument_id: int
    quantity: Decimal = ZERO
    # What the shares still held cost, fees included.
    cost_basis: Decimal = ZERO
    realized_gain: Decimal = ZERO
    dividends: Decimal = ZERO
    # Every fee paid: trading fees, withholding tax on dividends, standalone fees.
    fees: Decimal = ZERO

    @property
    def average_cost(self) -> Decimal:
        return self.cost_basis / self.quantity if self.quantity else ZERO


class OversellError(ValidationError):
    def __init__(self, *, on: date, held: Decimal, selling: Decimal) -> None:
        super().__init__(
            {"quantity": f"Selling {selling.normalize():f} on {on.isoformat()} is more than the "
                         f"{held.normalize():f} held on that date."}
        )


def position_apply(position: Position, tx: TransactionLike) -> None:
    """Apply one transaction to a position; raises OversellError for a sell beyond the holding."""
    kind = tx.type
    if kind == _BUY:
        position.quantity += tx.quantity
        position.cost_basis += tx.quantity * tx.price + tx.fee
        position.fees += tx.fee
    elif kind == _SELL:
        if tx.quantity > position.quantity:
            raise OversellError(on=tx.date, held=position.quantity, selling=tx.quantity)
        # Proportional share of the cost basis: exact, where quantity × rounded average is not.
        cost_removed = position.cost_basis * tx.quantity / position.quantity
        position.realized_gain += tx.quantity * tx.price - tx.fee - cost_removed
        position.cost_basis -= cost_removed
        position.quantity -= tx.quantity
        position.fees += tx.fee
        if position.quantity == ZERO:
            position.cost_basis = ZERO
    elif kind == _SPLIT:
        # A split changes the share count, never what the shares cost.
        position.quantity = split_applied(position.quantity, tx.quantity)
    elif kind == _DIVIDEND:
        position.dividends += tx.quantity * tx.price
        position.fees += tx.fee
    elif kind == _FEE:
        position.fees += tx.fee


# A quantity's stored precision (Transaction.quantity: 10 decimal places).
QUANTITY_STEP = Decimal("1e-10")
# The largest number of old shares a split's ratio is read as a fraction of (1 new for 3 old, 3 for 2, 1 for 1000).
SPLIT_OLD_SHARES_MAX = 1000


@cache
def _split_fraction(ratio: Decimal) -> tuple[int, int] | None:
    """The ratio a split's stored one stands for, as (new, old) shares, when it is a simple fraction rounded to the
    stored places: 0.3333333333 is 1 for 3 (no ratio with 10 places is), 1.5 is 3 for 2; None for another one."""
    fraction = Fraction(ratio).limit_denominator(SPLIT_OLD_SHARES_MAX)
    if (Decimal(fraction.numerator) / Decimal(fraction.denominator)).quantize(QUANTITY_STEP, ROUND_HALF_EVEN) != ratio:
        return None
    return fraction.numerator, fraction.denominator


def split_applied(quantity: Decimal, ratio: Decimal) -> Decimal:
    """The shares `quantity` becomes at a split of `ratio` (new shares per old), kept at a quantity's stored places:
    9 at 1 for 3 (stored 0.3333333333) are 3, not 2.9999999997, and 12.3456789123 at 3 for 2 are 18.5185183684 (a
    quantity a sell can name), not 18.51851836845, of which no sell could close the last 0.00000000005."""
    fraction = _split_fraction(ratio)
    with localcontext(EXACT_SUMS):
        shares = quantity * fraction[0] / fraction[1] if fraction else quantity * ratio
        return shares.quantize(QUANTITY_STEP, ROUND_HALF_EVEN) if shares.as_tuple().exponent < -10 else shares


def split_shared(held: Mapping[int | None, Decimal], ratio: Decimal) -> dict[int | None, Decimal]:
    """The shares each account holding a position has after a split of `ratio` (account id -> quantity, None: no
    account): each one's split_applied, but adding up to the position's own, split_applied of their total (what the
    portfolio holds), so that every account selling all it holds closes the position. Rounding each account's
    alone, 1 and 1 at 1 for 3 would be 0.3333333333 twice against the position's 0.6666666667; the steps the
    total differs by go to the accounts whose own rounding lost the most (gained the most, for steps taken back),
    equals in account order."""
    split = {account: split_applied(quantity, ratio) for account, quantity in held.items()}
    if len(split) < 2:
        return split
    with localcontext(EXACT_SUMS):
        steps = int((split_applied(sum(held.values(), ZERO), ratio) - sum(split.values(), ZERO)) / QUANTITY_STEP)
        if not steps:
            return split
        fraction = _split_fraction(ratio)
        lost = {account: (quantity * fraction[0] / fraction[1] if fraction else quantity * ratio) - split[account]
                for account, quantity in held.items()}
    step = QUANTITY_STEP if steps > 0 else -QUANTITY_STEP
    order = sorted(split, key=lambda account: (-lost[account] if steps > 0 else lost[account], account is not None,
                                               account or 0))
    for account in order[:abs(steps)]:
        split[account] += step
    return split


def positions_compute(transactions: Iterable[TransactionLike]) -> dict[int, Position]:
    """Positions by instrument id, replaying transactions in the order given (date, then entry)."""
    positions: dict[int, Position] = {}
    for tx in transactions:
        position = positions.setdefault(tx.instrument_id, Position(instrument_id=tx.instrument_id))
        position_apply(position, tx)
    return positions


def account_oversell_find(transactions: Iterable[TransactionLike],
                          accounts: Iterable[int | None]) -> tuple[TransactionLike, Decimal] | None:
    """The first sell (date, then entry order) of more shares than its own account held then, with what the
    account held; None when there is none. A split multiplies the instrument's shares in every account
    (it happens to the shares wherever they are)."""
    held: dict[tuple[int | None, int], Decimal] = {}
    for tx, account in zip(transactions, accounts, strict=True):
        kind, key = tx.type, (account, tx.instrument_id)
        if kind == _BUY:
            held[key] = held.get(key, ZERO) + tx.quantity
        elif kind == _SELL:
            if tx.quantity > held.get(key, ZERO):
                return tx, held.get(key, ZERO)
            held[key] -= tx.quantity
        elif kind == _SPLIT:
            shared = split_shared({k[0]: held[k] for k in held if k[1] == tx.instrument_id}, tx.quantity)
            held.update({(account, tx.instrument_id): quantity for account, quantity in shared.items()})
    return None


def account_oversell_message(tx, held: Decimal) -> str:
    """What a sell beyond its own account's shares is told (account_oversell_find); `tx` a model instance."""
    account = tx.account.name if tx.account is not None else "—"
    return (f"Selling {tx.quantity.normalize():f} on {tx.date.isoformat()} is more than the "
            f"{held.normalize():f} held in account '{account}' on that date.")


# --- Amounts in the base currency


# Plain tuples for the small records made once per transaction or per position valued (see TransactionRow).
class TransactionEffect(NamedTuple):
    """One transaction's amounts in the base currency, at the rate of its own date; NaN when that rate is
    unknown (never converted at 1)."""

    rate: Decimal | None
    amount: Decimal  # quantity × price: the trade's value, or the gross dividend
    fee: Decimal  # trading fee, tax withheld on a dividend, or a standalone fee
    realized_gain: Decimal  # non-zero for sells only


_effect_new = partial(tuple.__new__, TransactionEffect)  # see transaction_row_new


def transaction_apply_in_base(position: Position, tx: TransactionLike, *, rate: Decimal | None) -> TransactionEffect:
    """Apply one transaction, its price and fee converted at `rate`, to a position kept in the base currency
    (position_apply_in_base), and return its amounts in the base currency."""
    applied = position_apply_in_base(position, tx, rate=rate)
    return _effect_new((rate, tx.quantity * applied.price, applied.fee, position.realized_gain))


def position_apply_in_base(position: Position, tx: TransactionLike, *, rate: Decimal | None) -> TransactionLike:
    """Apply one transaction, its price and fee converted at `rate`, to a position kept in the base currency;
    return the transaction as applied: `tx` itself when there is nothing to convert (a rate of exactly 1, or a
    split, which has no amounts and needs no rate), else a TransactionRow of the converted amounts.

    The position's cost basis becomes NaN when an amount it depends on could not be converted, and stays
    so until the position is closed (the engine resets the cost to zero then). Its realized gain, dividends
    and fees are those of this transaction only: the caller adds up what is known (NaN: not converted).
    """
    if rate == ONE or tx.type == _SPLIT:  # (None == ONE is False; a Decimal compares faster with a Decimal)
        applied = tx  # the product by 1 would be the same numbers
    else:
        factor = NAN if rate is None else rate
        # Its price and fee now in the base currency (position_apply reads no currency).
        applied = transaction_row_new((tx.instrument_id, tx.type, tx.date, tx.quantity, tx.price * factor,
                                       tx.fee * factor, tx.currency))
    position.realized_gain = position.dividends = position.fees = ZERO
    position_apply(position, applied)
    return applied


def money_sum(amounts: Iterable[Decimal]) -> Decimal:
    """Exact sum (see EXACT_SUMS) of the known amounts; NaN ones are left out."""
    # Added in order from ZERO as a loop would, by C calls only (no Python step per amount): two thirds of the
    # loop's cost, and a cold dashboard of 500 holdings adds ~4,500 amounts.
    return reduce(_exact_add, filterfalse(_is_nan, amounts), ZERO)


_exact_add, _is_nan = EXACT_SUMS.add, Decimal.is_nan


# Cents are rounded in a context as wide as EXACT_SUMS: a huge amount (28 digits and more) is still written,
# never an error. Its bound quantize costs half of Decimal.quantize with keyword arguments, and a dashboard
# of 500 holdings writes ~2,500 amounts.
_cents = Context(prec=EXACT_SUMS.prec, rounding=ROUND_HALF_EVEN).quantize


def money_format(amount: Decimal) -> str:
    """Cents, rounded half-even once, when written out: 2.675 is "2.68"; never "-0.00"."""
    cents = _cents(amount, CENT)
    return str(cents if cents else cents.copy_abs())


def money_parts_format(parts: Sequence[Decimal], *, whole: Decimal | None = None) -> list[str]:
    """The parts of a whole in cents (as money_format writes them) that add up to the whole's cents: each part's
    cents rounded down, then the cents still short of the whole given, one each, to the parts with the largest
    fractions of a cent left (the first of equal ones first). So a part may show a cent above its own rounding,
    never more; `whole` (already in cents: another rounding's share of a larger whole) defaults to the parts'
    exact sum, rounded half-even."""
    cents = [_floor_cents(part) for part in parts]
    target = _cents(money_sum(parts) if whole is None else whole, CENT).scaleb(2)
    fractions = [part.scaleb(2) - floored for part, floored in zip(parts, cents, strict=True)]
    # Within what rounding down can leave short (a whole of other parts, which no caller gives, is met as far as
    # one cent a part goes rather than not at all).
    short = min(max(int(target) - sum(cents), 0), len(parts))
    for k in sorted(range(len(parts)), key=fractions.__getitem__, reverse=True)[:short]:
        cents[k] += 1
    return [money_format(Decimal(count).scaleb(-2)) for count in cents]


def _floor_cents(amount: Decimal) -> int:
    """The whole cents in `amount`, rounded toward minus infinity."""
    return int(Context(prec=EXACT_SUMS.prec, rounding=ROUND_FLOOR).to_integral_value(amount.scaleb(2)))


def plain_format(value: Decimal) -> str:
    """A quantity or price as stored, without trailing zeros or exponent (10, 0.015, 185.5)."""
    normal = value.normalize()
    # str() writes what the fixed-point format writes unless it needs an exponent (1E+1, 1E-7), at a fifth of its
    # cost (twice per holding the dashboard writes).
    text = str(normal)
    return format(normal, "f") if "E" in text else text


# Rates and ratios of money figures are fractions with 6 decimals: 0.123456 = 12.3456 %.
RATIO_QUANTUM = Decimal("0.000001")


def ratio_format(part: Decimal, whole: Decimal | None) -> str | None:
    """part / whole of two money figures as a fraction with 6 decimals, rounded half-even once; None when
    there is no whole (none, 0 or less) or the ratio is beyond any meaning (28 digits: a near-zero whole)."""
    if whole is None or whole <= 0:
        return None
    try:
        ratio = (part / whole).quantize(RATIO_QUANTUM, ROUND_HALF_EVEN)
    except InvalidOperation:
        return None
    return str(ratio if ratio else ratio.copy_abs())


def percent_format(part: Decimal | None, whole: Decimal | None) -> str | None:
    """part / whole in percent with 2 decimals (12.35), rounded half-even once, as the dashboard shows
    changes and gains; None when either is missing or the whole is 0."""
    if part is None or not whole:
        return None
    return money_format(part / whole * 100)


# Allocation weights are fractions of 1 with 4 decimals: 0.1234 = 12.34 %.
WEIGHT_PLACES = 4


def weights_format(values: list[Decimal]) -> list[str]:
    """Fractions of the total rounded to WEIGHT_PLACES that add up to exactly 1 (largest remainder), so an
    allocation's slices make a whole; all zero when the total is not positive."""
    total = money_sum(values)
    if total <= 0:
        return [f"{0:.{WEIGHT_PLACES}f}" for _ in values]
    # Each step over all the values by C calls (map) rather than a Python step per value: an allocation of 500
    # holdings weighs 500. value × units / total, as products commute.
    shares = [scaled / total for scaled in map(_WEIGHT_UNITS_DECIMAL.__mul__, values)]
    rounded = list(map(int, shares))  # values are positive: int() is the floor
    shortfalls = list(map(sub, rounded, shares))  # how far below its share: the largest remainder is the least
    for k in sorted(range(len(values)), key=shortfalls.__getitem__)[: _WEIGHT_UNITS - sum(rounded)]:
        rounded[k] += 1
    return [_UNITS_TEXTS[n] for n in rounded]


def _units_format(n: int) -> str:
    """n ten-thousandths with WEIGHT_PLACES decimals (1234 is "0.1234"), written by integer arithmetic: half the
    cost of a Decimal made, scaled and formatted per slice (an allocation of 500 holdings has 500); by a format
    made once (an f-string's nested width is parsed again on every call: twice the cost)."""
    whole, part = divmod(abs(n), _WEIGHT_UNITS)
    return _UNITS_TEXT % ("-" if n < 0 else "", whole, part)


_WEIGHT_UNITS = 10**WEIGHT_PLACES
_WEIGHT_UNITS_DECIMAL = Decimal(_WEIGHT_UNITS)  # the same number, not converted again for every product
_UNITS_TEXT = f"%s%d.%0{WEIGHT_PLACES}d"  # sign, whole, the WEIGHT_PLACES digits of the fraction


class WrittenOnce(dict):
    """value -> write(value), each value written once and then looked up: a fraction of writing it again, for
    texts many values share. `keep(value)`: whether to keep it (a memo that lives as long as the process keeps
    a bounded set); by default every one. Only for values that write the same text whenever they compare equal
    (not 1 and True for json.dumps, nor one moment in two time zones)."""

    def __init__(self, write: Callable[[Any], str], *, keep: Callable[[Any], bool] | None = None) -> None:
        super().__init__()
        self._write, self._keep = write, keep

    def __missing__(self, value: Any) -> str:
        text = self._write(value)
        if self._keep is None or self._keep(value):
            self[value] = text
        return text


# Weights' texts: those of 0 to 1 (at most 10,001) kept for the process's life. An allocation of 500 holdings
# writes 500 weights, mostly the same few hundred: a look-up is a tenth of the formatting's cost.
_UNITS_TEXTS = WrittenOnce(_units_format, keep=lambda n: 0 <= n <= _WEIGHT_UNITS)


# --- Price observations


CLOSE = "close"
TRADE = "trade"


class Observation(NamedTuple):
    """What an instrument was worth on `date`, in its own currency: a stored close, or one of the portfolio's
    own trades. Once returned by observation_on, `price` is per share of the day asked about (splits since
    `date` divided out) while `date` stays the day it was observed."""

    date: date
    price: Decimal
    source: str  # CLOSE or TRADE


observation_new = partial(tuple.__new__, Observation)  # Observation((date, price, source)): see transaction_row_new


def price_in_currency(price: Decimal, *, source: str, target: str, on: date, rate: RateLookup) -> Decimal | None:
    """A price in `source` currency expressed in `target` at the rates of `on` (through the base currency),
    or None without a rate. Units of one major currency (GBP, GBp) convert by their fixed factor."""
    if source == target:
        return price
    (source_major, source_factor), (target_major, target_factor) = currency_major(source), currency_major(target)
    if source_major == target_major:
        return price * source_factor / target_factor
    source_rate, target_rate = rate(source, on), rate(target, on)
    if source_rate is None or target_rate is None:
        return None
    return price * source_rate / target_rate


def trade_observations(transactions: Sequence[TransactionLike], *, currencies: Mapping[int, str],
                       rate: RateLookup, latest_only: bool = False,
                       of: Collection[int] | None = None) -> dict[int, list[Observation]]:
    """Each instrument's buy and sell prices as observations in its own currency, oldest first, one per day:
    the day's last trade (transactions come in date, then entry order). latest_only: just each instrument's
    latest one (what valuing today needs). of: only those instruments' (with latest_only, the scan from the
    newest ends once each has one: the rest could add nothing).

    A trade in another currency than the instrument's is converted at its date's rates; without them it is
    no observation. Nor is a trade at price 0 (a transfer in, a gift): it says nothing about the price.
    """
    observed: dict[int, list[Observation]] = {}
    traded = (_BUY, _SELL)
    for tx in reversed(transactions) if latest_only else transactions:
        # An instrument observed already first: when latest_only, that is most transactions.
        if ((latest_only and tx.instrument_id in observed) or (of is not None and tx.instrument_id not in of)
                or tx.type not in traded or tx.price <= 0):
            continue
        target = currencies[tx.instrument_id]
        price = tx.price if tx.currency == target else price_in_currency(
            tx.price, source=tx.currency, target=target, on=tx.date, rate=rate)
        if price is None:
            continue
        rows = observed.get(tx.instrument_id)
        if rows is None:
            rows = observed[tx.instrument_id] = []
        elif rows[-1].date == tx.date:
            rows.pop()
        rows.append(observation_new((tx.date, price, TRADE)))
        if latest_only and of is not None and len(observed) == len(of):
            break
    return observed


def splits_of(transactions: Iterable[TransactionLike]) -> dict[int, list[tuple[date, Decimal]]]:
    """Each instrument's splits as (date, ratio), oldest first."""
    splits: dict[int, list[tuple[date, Decimal]]] = {}
    for tx in transactions:
        if tx.type == _SPLIT:
            splits.setdefault(tx.instrument_id, []).append((tx.date, tx.quantity))
    return splits


def observation_on(*, close: Observation | None, trades: Sequence[Observation],
                   splits: Sequence[tuple[date, Decimal]], on: date) -> Observation | None:
    """The instrument's price at the end of `on`: its latest observation on or before `on` — `close` (the
    latest close on or before `on`) or the latest of `trades`, the close winning a day with both (it is the
    end of the day) — divided by the ratio of every split after that observation's day, up to `on`.

    A trade on a split's own day is taken as after the split, like that day's close. None when nothing was
    observed yet: the position is then left out of the value, never valued at 0.
    """
    trade = None
    if trades:
        trade = trades[-1] if trades[-1].date <= on else None
        if trade is None:
            at = bisect_right(trades, on, key=_observed_on)
            trade = trades[at - 1] if at else None
    latest = close if close is not None and (trade is None or close.date >= trade.date) else trade
    if latest is None or not splits:
        return latest
    price = latest.price
    for day, ratio in splits:
        if latest.date < day <= on:
            price /= ratio
    return Observation(latest.date, price, latest.source)


def _observed_on(observation: Observation) -> date:
    return observation.date


# --- Valuation


class PositionValue(NamedTuple):
    """One position at the end of a day, in the base currency."""

    instrument_id: int
    quantity: Decimal
    cost: Decimal | None  # its cost basis; None when an amount of it had no rate
    observation: Observation | None
    fx_rate: Decimal | None  # base-currency units per unit of the instrument's currency that day
    value: Decimal | None  # None: no observation yet, or no rate — left out of every total, never 0

    @property
    def unrealized_gain(self) -> Decimal | None:
        return None if self.value is None or self.cost is None else self.value - self.cost


_position_value_new = partial(tuple.__new__, PositionValue)  # see transaction_row_new


@dataclass(frozen=True)
class PortfolioValue:
    positions: dict[int, PositionValue]  # by instrument id
    total_value: Decimal  # of the positions valued
    total_cost: Decimal  # of the positions held whose cost is known
    unrealized_gain: Decimal  # value − cost of the positions valued whose cost is known


def portfolio_value_compute(*, held: Mapping[int, tuple[Decimal, Decimal]], closes: Mapping[int, Observation],
                            trades: Mapping[int, Sequence[Observation]],
                            splits: Mapping[int, Sequence[tuple[date, Decimal]]], currencies: Mapping[int, str],
                            rate: RateLookup, on: date) -> PortfolioValue:
    """Market value at the end of `on` of each position held — quantity × observation_on × the rate of `on` —
    and the portfolio's totals.

    held: instrument id -> (quantity, cost basis in the base currency, NaN when unknown), positions with a
    non-zero quantity; closes: each instrument's latest stored close on or before `on`. The one valuation of
    Folio: the dashboard calls it for today, the chart and the performance figures for the days they report.
    """
    # One pass, each total added in the positions' order as money_sum would (the chart values ~17 days of
    # hundreds of positions per generation: the calls and passes saved are most of the cost).
    positions: dict[int, PositionValue] = {}
    total_value = total_cost = unrealized_gain = ZERO
    add = EXACT_SUMS.add
    rates: dict[str, Decimal | None] = {}  # `on`'s rate of each currency, asked once
    for instrument_id, (quantity, cost) in held.items():
        close = closes.get(instrument_id)
        instrument_trades, instrument_splits = trades.get(instrument_id), splits.get(instrument_id)
        if instrument_splits or (instrument_trades and (
                close is None or (close.date < on and close.date < instrument_trades[-1].date))):
            observation = observation_on(close=close, trades=instrument_trades or (),
                                         splits=instrument_splits or (), on=on)
        else:
            # No split, and no trade later than the close (or the close is `on`'s, which wins its day): the
            # close, as observation_on answers.
            observation = close
        fx_rate = value = None
        if observation is not None:
            code = currencies[instrument_id]
            if code in rates:
                fx_rate = rates[code]
            else:
                fx_rate = rates[code] = rate(code, on)
            if fx_rate is not None:
                value = quantity * observation.price * fx_rate
                if not value.is_nan():
                    total_value = add(total_value, value)
        if cost.is_nan():
            cost = None
        else:
            total_cost = add(total_cost, cost)
            if value is not None and not (gain := value - cost).is_nan():
                unrealized_gain = add(unrealized_gain, gain)
        positions[instrument_id] = _position_value_new((instrument_id, quantity, cost, observation, fx_rate, value))
    return PortfolioValue(positions=positions, total_value=total_value, total_cost=total_cost,
                          unrealized_gain=unrealized_gain)
