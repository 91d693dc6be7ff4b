"""Average cost, realized gain, splits and oversells, computed by hand."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D

import pytest

from portfolio.holdings import OversellError, positions_compute


@dataclass
class Tx:
    type: str
    date: date
    quantity: D
    price: D = D("0")
    fee: D = D("0")
    instrument_id: int = 1


def test_two_buys_average_cost_includes_fees():
    # given 10 @ 100 + 1 fee, then 30 @ 120 + 3 fee: cost 1001 + 3603 = 4604 for 40 shares
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("10"), D("100"), D("1")),
        Tx("BUY", date(2024, 2, 1), D("30"), D("120"), D("3")),
    ])
    position = positions[1]
    assert position.quantity == D("40")
    assert position.cost_basis == D("4604")
    assert position.average_cost == D("115.1")
    assert position.fees == D("4")
    assert position.realized_gain == D("0")


def test_partial_sell_realizes_gain_against_average_cost():
    # given 40 shares costing 4604 (avg 115.1); sell 10 @ 130 with a 2 fee
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("10"), D("100"), D("1")),
        Tx("BUY", date(2024, 2, 1), D("30"), D("120"), D("3")),
        Tx("SELL", date(2024, 3, 1), D("10"), D("130"), D("2")),
    ])
    position = positions[1]
    # proceeds 1300 - 2 = 1298; cost removed 4604 * 10/40 = 1151; gain 147
    assert position.realized_gain == D("147")
    assert position.quantity == D("30")
    assert position.cost_basis == D("3453")
    assert position.average_cost == D("115.1")


def test_sell_at_a_loss():
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("5"), D("200")),
        Tx("SELL", date(2024, 1, 3), D("2"), D("150"), D("1")),
    ])
    assert positions[1].realized_gain == D("-101")  # 300 - 1 - 400
    assert positions[1].quantity == D("3")
    assert positions[1].cost_basis == D("600")


def test_full_exit_leaves_no_cost_and_keeps_the_gain():
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("3"), D("10")),
        Tx("BUY", date(2024, 1, 3), D("3"), D("20")),
        Tx("SELL", date(2024, 1, 4), D("6"), D("25")),
    ])
    assert positions[1].quantity == D("0")
    assert positions[1].cost_basis == D("0")
    assert positions[1].average_cost == D("0")
    assert positions[1].realized_gain == D("60")  # 150 - 90


def test_split_multiplies_quantity_and_keeps_cost():
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("10"), D("1000"), D("5")),
        Tx("SPLIT", date(2024, 6, 10), D("10")),
        Tx("SELL", date(2024, 7, 1), D("50"), D("120")),
    ])
    position = positions[1]
    # 100 shares after the split at avg 100.05; selling 50 @ 120 realizes 6000 - 5002.5
    assert position.quantity == D("50")
    assert position.realized_gain == D("997.5")
    assert position.cost_basis == D("5002.5")
    assert position.average_cost == D("100.05")


def test_reverse_split():
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("100"), D("2")),
        Tx("SPLIT", date(2024, 2, 1), D("0.1")),
    ])
    assert positions[1].quantity == D("10.0")
    assert positions[1].average_cost == D("20")


def test_dividend_and_fee_are_income_and_cost_not_position():
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("10"), D("50")),
        Tx("DIVIDEND", date(2024, 3, 1), D("10"), D("0.75"), D("1.13")),
        Tx("FEE", date(2024, 4, 1), D("0"), D("0"), D("12.50")),
    ])
    position = positions[1]
    assert position.quantity == D("10")
    assert position.cost_basis == D("500")
    assert position.dividends == D("7.50")
    assert position.fees == D("13.63")


def test_oversell_is_rejected_naming_quantity():
    with pytest.raises(OversellError) as raised:
        positions_compute([
            Tx("BUY", date(2024, 1, 2), D("5"), D("10")),
            Tx("SELL", date(2024, 1, 3), D("6"), D("10")),
        ])
    assert raised.value.message_dict == {
        "quantity": ["Selling 6 on 2024-01-03 is more than the 5 held on that date."]
    }


def test_sell_before_the_buy_is_an_oversell():
    with pytest.raises(OversellError):
        positions_compute([
            Tx("SELL", date(2024, 1, 2), D("1"), D("10")),
            Tx("BUY", date(2024, 1, 3), D("5"), D("10")),
        ])


def test_positions_are_per_instrument():
    positions = positions_compute([
        Tx("BUY", date(2024, 1, 2), D("1"), D("10"), instrument_id=1),
        Tx("BUY", date(2024, 1, 2), D("2"), D("20"), instrument_id=2),
    ])
    assert {k: (p.quantity, p.cost_basis) for k, p in positions.items()} == {
        1: (D("1"), D("10")), 2: (D("2"), D("40"))
    }
