"""Average cost, realized gain, splits and oversells; price observations and the one valuation; computed by hand."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D

import pytest

from portfolio.holdings import (
    _UNITS_TEXTS,
    CLOSE,
    TRADE,
    WEIGHT_PLACES,
    Observation,
    OversellError,
    Position,
    money_format,
    money_parts_format,
    money_sum,
    observation_on,
    plain_format,
    portfolio_value_compute,
    position_apply_in_base,
    positions_compute,
    splits_of,
    trade_observations,
    transaction_apply_in_base,
    weights_format,
)


@dataclass
class Tx:
    type: str
    date: date
    quantity: D
    price: D = D("0")
    fee: D = D("0")
    instrument_id: int = 1
    currency: str = "USD"


def no_rates(code: str, day: date) -> D | None:
    return D(1) if code == "USD" else None


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


# --- Observations and valuation


def test_the_days_last_trade_is_its_observation_and_a_zero_price_is_none():
    trades = trade_observations([
        Tx("BUY", date(2024, 1, 2), D("1"), D("10")),
        Tx("BUY", date(2024, 1, 2), D("1"), D("11")),
        Tx("DIVIDEND", date(2024, 1, 3), D("2"), D("0.5")),
        Tx("SELL", date(2024, 1, 4), D("1"), D("12")),
        Tx("BUY", date(2024, 1, 5), D("1"), D("0")),  # a transfer in: says nothing about the price
    ], currencies={1: "USD"}, rate=no_rates)

    assert trades == {1: [Observation(date(2024, 1, 2), D("11"), TRADE), Observation(date(2024, 1, 4), D("12"), TRADE)]}


def test_a_trade_in_another_currency_converts_at_its_days_rates_or_is_no_observation():
    rates = {("EUR", date(2024, 1, 2)): D("1.1"), ("USD", date(2024, 1, 2)): D("1")}
    trades = trade_observations([
        Tx("BUY", date(2024, 1, 2), D("1"), D("100"), currency="EUR"),
        Tx("BUY", date(2024, 1, 3), D("1"), D("100"), currency="EUR"),  # no EUR rate known on 3 Jan
        Tx("BUY", date(2024, 1, 4), D("1"), D("0.5"), currency="GBP", instrument_id=2),  # GBP for pence
    ], currencies={1: "USD", 2: "GBp"}, rate=lambda code, day: rates.get((code, day)))

    assert trades == {1: [Observation(date(2024, 1, 2), D("110"), TRADE)],
                      2: [Observation(date(2024, 1, 4), D("50"), TRADE)]}


def test_the_latest_trade_of_each_held_instrument_values_as_every_trade_does():
    """The replay keeps only each held instrument's latest trade (trade_observations(latest_only, of=held)):
    portfolio_value_compute values every holding with them as with every trade of every instrument — a close
    newer than the trade (1, 2 on the 8th) beats it, a trade newer than the close (5; 2 on the 9th) or without
    one (3: cash, a manual instrument priced by its trades only) values it, a split since divides it."""
    transactions = [
        Tx("BUY", date(2024, 1, 2), D("5"), D("20"), instrument_id=3),
        Tx("BUY", date(2024, 1, 2), D("2"), D("10")),
        Tx("BUY", date(2024, 1, 3), D("1"), D("0"), instrument_id=3),  # a transfer in: no observation
        Tx("BUY", date(2024, 1, 4), D("3"), D("30"), instrument_id=5),  # after 5's close: it values 5
        Tx("BUY", date(2024, 1, 4), D("2"), D("50"), instrument_id=2),
        Tx("SELL", date(2024, 1, 8), D("1"), D("55"), instrument_id=2),
        Tx("BUY", date(2024, 1, 9), D("1"), D("7"), instrument_id=4),  # not held: not kept
        Tx("SELL", date(2024, 1, 9), D("1"), D("7"), instrument_id=4),
    ]
    closes = {1: Observation(date(2024, 1, 5), D("12"), CLOSE), 2: Observation(date(2024, 1, 6), D("51"), CLOSE),
              5: Observation(date(2024, 1, 3), D("28"), CLOSE)}
    held = {1: (D("2"), D("20")), 2: (D("1"), D("50")), 3: (D("6"), D("100")), 5: (D("3"), D("90"))}
    currencies = {1: "USD", 2: "USD", 3: "USD", 4: "USD", 5: "USD"}

    kept = trade_observations(transactions, currencies=currencies, rate=no_rates, latest_only=True, of=held)

    assert kept == {1: [Observation(date(2024, 1, 2), D("10"), TRADE)],
                    2: [Observation(date(2024, 1, 8), D("55"), TRADE)],
                    3: [Observation(date(2024, 1, 2), D("20"), TRADE)],
                    5: [Observation(date(2024, 1, 4), D("30"), TRADE)]}
    every_trade = trade_observations(transactions, currencies=currencies, rate=no_rates)
    assert len(every_trade[3]) == 1 and 4 in every_trade
    for on in (date(2024, 1, 8), date(2024, 1, 9)):
        value = {name: portfolio_value_compute(held=held, closes=closes, trades=observed, splits={1: [
            (date(2024, 1, 7), D("2"))]}, currencies=currencies, rate=no_rates, on=on)
            for name, observed in (("kept", kept), ("all", every_trade))}
        assert value["kept"] == value["all"]
        assert value["kept"].positions[5].observation.source == TRADE
        assert value["kept"].positions[1].observation == Observation(date(2024, 1, 5), D("6"), CLOSE)  # split by 2


class _ReadFromNewest(list):
    """Transactions that count how many of them a newest-first scan reads."""

    read = 0

    def __reversed__(self):
        for tx in super().__reversed__():
            self.read += 1
            yield tx


def test_the_trades_of_some_instruments_are_theirs_only_and_the_scan_ends_at_each_ones_newest():
    """trade_observations(of=...): the replay's scan for the latest trade of each held instrument reads from the
    newest back to each one's newest trade, and no further."""
    transactions = _ReadFromNewest([
        Tx("BUY", date(2024, 1, 2), D("5"), D("20"), instrument_id=3),
        Tx("BUY", date(2024, 1, 3), D("1"), D("1"), instrument_id=9),
        Tx("BUY", date(2024, 1, 4), D("2"), D("10")),
        Tx("SELL", date(2024, 1, 5), D("1"), D("1"), instrument_id=9),
        Tx("BUY", date(2024, 1, 5), D("3"), D("0"), instrument_id=3),  # a transfer in: no observation
        Tx("BUY", date(2024, 1, 6), D("1"), D("12")),
    ])
    currencies = {1: "USD", 3: "USD", 9: "USD"}

    trades = trade_observations(transactions, currencies=currencies, rate=no_rates, latest_only=True, of={3, 9})

    assert trades == {3: [Observation(date(2024, 1, 2), D("20"), TRADE)],
                      9: [Observation(date(2024, 1, 5), D("1"), TRADE)]}
    assert transactions.read == 6  # down to 3's buy of 2 Jan, the first row: all of them
    transactions.read = 0
    assert trade_observations(transactions, currencies=currencies, rate=no_rates, latest_only=True, of={9}) == {
        9: [Observation(date(2024, 1, 5), D("1"), TRADE)]}
    assert transactions.read == 3  # 6 Jan, 5 Jan's transfer, 5 Jan's sell of 9: then it ends


def test_the_close_wins_its_day_and_splits_since_the_observation_divide_it():
    trades = [Observation(date(2024, 1, 2), D("1200"), TRADE), Observation(date(2024, 1, 5), D("130"), TRADE)]
    splits = [(date(2024, 1, 4), D("10"))]
    close = Observation(date(2024, 1, 5), D("128"), CLOSE)

    assert observation_on(close=None, trades=trades, splits=splits, on=date(2024, 1, 3)) == Observation(
        date(2024, 1, 2), D("1200"), TRADE)
    # from the split on, the carried 1200 is 120 per new share; its date stays the day it was observed
    assert observation_on(close=None, trades=trades, splits=splits, on=date(2024, 1, 4)) == Observation(
        date(2024, 1, 2), D("120"), TRADE)
    assert observation_on(close=close, trades=trades, splits=splits, on=date(2024, 1, 5)) == close
    assert observation_on(close=None, trades=[], splits=splits, on=date(2024, 1, 5)) is None


def test_splits_of_keeps_each_instruments_ratios_in_order():
    assert splits_of([Tx("SPLIT", date(2024, 1, 2), D("2")), Tx("BUY", date(2024, 1, 3), D("1")),
                      Tx("SPLIT", date(2024, 1, 4), D("0.5"))]) == {1: [(date(2024, 1, 2), D("2")),
                                                                          (date(2024, 1, 4), D("0.5"))]}


def test_a_position_is_valued_at_its_observation_never_at_zero():
    value = portfolio_value_compute(
        held={1: (D("4"), D("562.20")), 2: (D("3"), D("30")), 3: (D("2"), D("NaN"))},
        closes={3: Observation(date(2024, 1, 3), D("50"), CLOSE)},
        trades={1: [Observation(date(2024, 1, 2), D("136.60"), TRADE)]},
        splits={}, currencies={1: "USD", 2: "USD", 3: "EUR"},
        rate=lambda code, day: D("1") if code == "USD" else D("1.1"), on=date(2024, 1, 3))

    assert value.positions[1].value == D("546.40")
    assert value.positions[2].value is None and value.positions[2].observation is None  # left out, not 0
    assert (value.positions[3].value, value.positions[3].cost) == (D("110.0"), None)
    assert value.total_value == D("656.40")
    assert value.total_cost == D("592.20")  # the unknown cost is left out, never counted at 0 or at 1
    assert value.unrealized_gain == D("-15.80")  # only where both value and cost are known


def test_an_amount_without_a_rate_stays_unknown_until_the_position_closes():
    position = Position(instrument_id=1)
    bought = transaction_apply_in_base(position, Tx("BUY", date(2024, 1, 2), D("2"), D("10"), D("1")), rate=None)
    sold = transaction_apply_in_base(position, Tx("SELL", date(2024, 1, 3), D("1"), D("12")), rate=D("1.1"))

    assert bought.amount.is_nan() and bought.fee.is_nan() and position.cost_basis.is_nan()
    assert sold.amount == D("13.2") and sold.realized_gain.is_nan()
    transaction_apply_in_base(position, Tx("SELL", date(2024, 1, 4), D("1"), D("12")), rate=D("1.1"))
    assert position.cost_basis == 0


def test_a_transaction_at_rate_one_is_applied_as_it_is_and_leaves_its_own_amounts_on_the_position():
    """The one engine of the base-currency replay (the dashboard's valuation and the chart's): at a rate of 1
    nothing is converted (the transaction itself is applied), and the position's realized gain, dividends and
    fees are then those of that transaction alone."""
    position = Position(instrument_id=1)
    buy = Tx("BUY", date(2024, 1, 2), D("4"), D("10"), D("1"))
    assert position_apply_in_base(position, buy, rate=D("1")) is buy
    assert (position.quantity, position.cost_basis, position.fees) == (D("4"), D("41"), D("1"))
    sell = Tx("SELL", date(2024, 1, 3), D("1"), D("12"), D("0.5"))
    assert position_apply_in_base(position, sell, rate=D("1")) is sell
    assert (position.realized_gain, position.fees, position.dividends) == (D("1.25"), D("0.5"), 0)
    dividend = Tx("DIVIDEND", date(2024, 1, 4), D("3"), D("0.5"), D("0.2"))
    position_apply_in_base(position, dividend, rate=D("1"))
    assert (position.realized_gain, position.dividends, position.fees) == (0, D("1.5"), D("0.2"))
    # At another rate, the amounts applied are converted; a split needs no rate and is applied as it is.
    converted = position_apply_in_base(position, Tx("BUY", date(2024, 1, 5), D("1"), D("10")), rate=D("1.1"))
    assert (converted.price, position.quantity) == (D("11.0"), D("4"))
    split = Tx("SPLIT", date(2024, 1, 6), D("2"))
    assert position_apply_in_base(position, split, rate=None) is split and position.quantity == D("8")
    # The chart's record of a transaction is made of the same application.
    effect = transaction_apply_in_base(Position(instrument_id=1), buy, rate=D("1"))
    assert (effect.rate, effect.amount, effect.fee, effect.realized_gain) == (D("1"), D("40"), D("1"), 0)


def test_a_quantity_or_price_is_written_as_stored_without_trailing_zeros_nor_exponent():
    """plain_format: the holdings answer and the CSV export write quantities and prices so."""
    assert [plain_format(D(text)) for text in ("185.640000", "100.0000000000", "1E+1", "0.0000001", "-0", "12.5")] \
        == ["185.64", "100", "10", "0.0000001", "-0", "12.5"]
    assert plain_format(D("1.5E+30")) == "1500000000000000000000000000000"


def test_money_is_summed_exactly_and_rounded_half_even_once():
    assert money_format(D("2.675")) == "2.68" and money_format(D("2.665")) == "2.66"
    assert money_format(D("-0.001")) == "0.00"
    assert money_format(D("12345678901234567890123456789.125")) == "12345678901234567890123456789.12"
    assert money_sum([D("0.1")] * 3 + [D("NaN")]) == D("0.3")
    # exact whatever the order: the default 28 digits would lose the small term in the first order
    big, small = D("1234567890123456789012.345678"), D("0.000000000001")
    assert money_sum([big, small, -big]) == money_sum([big, -big, small]) == small
    # any iterable, added in its order from 0 (the exponent of the first terms stays: "3.10", not "3.1")
    assert str(money_sum(D(text) for text in ("1.10", "NaN", "2"))) == "3.10" and money_sum(iter([])) == 0


def test_weights_are_ten_thousandths_that_make_a_whole():
    # a third each: the largest remainders (equal: the first in order) take the missing ten-thousandth
    assert weights_format([D("1"), D("1"), D("1")]) == ["0.3334", "0.3333", "0.3333"]
    assert weights_format([D("999.99")]) == ["1.0000"]
    assert weights_format([D("1"), D("19999")]) == ["0.0001", "0.9999"]
    assert weights_format([D("0"), D("0")]) == ["0.0000", "0.0000"]


def test_weights_beyond_a_whole_are_written_too_but_never_kept():
    # a negative value among positive ones (the weights of 0 to 1 a process writes are kept: at most 10,001)
    for _ in range(2):
        assert weights_format([D("-1"), D("3")]) == ["-0.5000", "1.5000"]
    assert all(0 <= n <= 10**WEIGHT_PLACES for n in _UNITS_TEXTS)
    assert _UNITS_TEXTS[1234] == "0.1234" and _UNITS_TEXTS[10**WEIGHT_PLACES] == "1.0000"


@pytest.mark.parametrize(("parts", "whole", "shown"), [
    (["10.125", "10.125"], None, ["10.13", "10.12"]),  # 20.25: the first of equal fractions gets the cent
    (["1.005", "2.004", "3.0049"], None, ["1.01", "2.00", "3.00"]),  # 6.01: to the largest fraction
    (["-10.125", "5"], None, ["-10.12", "5.00"]),  # -5.125 is -5.12 (half-even): minus infinity is rounded from
    (["-0.004", "0.003"], None, ["0.00", "0.00"]),  # never "-0.00"
    (["0.005", "0.005"], "0.02", ["0.01", "0.01"]),  # a given whole (another rounding's share): met
    ([], None, []),
])
def test_parts_in_cents_add_up_to_their_whole_in_cents(parts, whole, shown):
    result = money_parts_format([D(p) for p in parts], whole=None if whole is None else D(whole))
    assert result == shown
    total = money_format(sum((D(p) for p in parts), D(0))) if whole is None else whole
    assert sum((D(r) for r in result), D(0)) == D(total)
