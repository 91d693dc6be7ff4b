"""Positions derived from transactions: the average-cost method, splits and realized gains.

Pure computation over transaction-like objects, so the same code validates a write before it is
saved (services) and values a portfolio when it is read (selectors).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.core.exceptions import ValidationError

from portfolio.models import TransactionType

ZERO = Decimal("0")


class TransactionLike(Protocol):
    instrument_id: int
    type: str
    date: date
    quantity: Decimal
    price: Decimal
    fee: Decimal


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
    if tx.type == TransactionType.BUY:
        position.quantity += tx.quantity
        position.cost_basis += tx.quantity * tx.price + tx.fee
        position.fees += tx.fee
    elif tx.type == TransactionType.SELL:
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
    elif tx.type == TransactionType.SPLIT:
        # A split changes the share count, never what the shares cost.
        position.quantity *= tx.quantity
    elif tx.type == TransactionType.DIVIDEND:
        position.dividends += tx.quantity * tx.price
        position.fees += tx.fee
    elif tx.type == TransactionType.FEE:
        position.fees += tx.fee


def positions_compute(transactions: Iterable[TransactionLike]) -> dict[int, Position]:
    """Positions by instrument id, replaying transactions in the order given (date, then entry)."""
    positions: dict[int, Position] = {}
    for tx in transactions:
        position = positions.setdefault(tx.instrument_id, Position(instrument_id=tx.instrument_id))
        position_apply(position, tx)
    return positions
