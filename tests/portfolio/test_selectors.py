"""Valuation of a hand-computed portfolio, and its constant query count."""

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.db import connection
from django.db.backends.postgresql.base import ServerBindingCursor
from django.test.utils import CaptureQueriesContext

from portfolio import selectors
from portfolio.holdings import TransactionRow
from portfolio.models import Account, Portfolio
from portfolio.selectors import (
    AccountRow,
    PortfolioHeader,
    account_quantities_compute,
    portfolio_accounts_valuation_get,
    portfolio_valuation_get,
)
from prices.fx import fx_rates_store
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory

# A Wednesday evening: the last NYSE close that should exist is that day's.
NOW = datetime(2024, 3, 6, 23, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def test_valuation_of_a_hand_computed_portfolio(portfolio):
    aapl = InstrumentFactory(symbol="AAPL")
    msft = InstrumentFactory(symbol="MSFT")
    gone = InstrumentFactory(symbol="GONE")
    unpriced = InstrumentFactory(symbol="NEWCO")  # no close: valued at its own trade price
    TransactionFactory(portfolio=portfolio, instrument=aapl, quantity=D("10"), price=D("100"), fee=D("1"))
    TransactionFactory(portfolio=portfolio, instrument=aapl, type="SELL", date=date(2024, 2, 1),
                       quantity=D("4"), price=D("150"))
    TransactionFactory(portfolio=portfolio, instrument=msft, quantity=D("2"), price=D("300"))
    TransactionFactory(portfolio=portfolio, instrument=gone, quantity=D("1"), price=D("50"))
    TransactionFactory(portfolio=portfolio, instrument=gone, type="SELL", date=date(2024, 3, 1),
                       quantity=D("1"), price=D("40"))
    TransactionFactory(portfolio=portfolio, instrument=unpriced, quantity=D("3"), price=D("5"))
    TransactionFactory(portfolio=portfolio, instrument=msft, type="DIVIDEND", date=date(2024, 3, 2),
                       quantity=D("2"), price=D("0.75"), fee=D("0.23"))
    PriceFactory(instrument=aapl, date=date(2024, 3, 1), close=D("110"))
    PriceFactory(instrument=aapl, date=date(2024, 3, 4), close=D("120"))
    PriceFactory(instrument=msft, date=date(2024, 3, 4), close=D("310.5"))

    valuation = portfolio_valuation_get(portfolio=portfolio)

    by_symbol = {h.instrument.symbol: h for h in valuation.holdings}
    assert [h.instrument.symbol for h in valuation.holdings] == ["AAPL", "MSFT", "NEWCO"]
    aapl_h = by_symbol["AAPL"]
    # 6 shares left of 10 costing 1001: cost 600.6, avg 100.1; value 720
    assert (aapl_h.quantity, aapl_h.cost_basis, aapl_h.average_cost) == (D("6"), D("600.6"), D("100.1"))
    assert (aapl_h.price, aapl_h.price_as_of, aapl_h.previous_close) == (D("120"), date(2024, 3, 4), D("110"))
    assert aapl_h.market_value == D("720")
    assert aapl_h.unrealized_gain == D("119.4")
    assert aapl_h.realized_gain == D("199.6")  # 600 - 400.4
    assert by_symbol["MSFT"].market_value == D("621.0")
    newco = by_symbol["NEWCO"]
    assert (newco.price, newco.price_as_of, newco.market_value, newco.price_source) == (
        D("5"), date(2024, 1, 2), D("15"), "trade")
    assert newco.previous_close is None and newco.stale is True  # a January price, flagged with its date
    assert [h.instrument.symbol for h in valuation.closed] == ["GONE"]

    assert valuation.total_value == D("1356.0")  # 720 + 621 + 15
    assert valuation.total_cost == D("1215.6")  # 600.6 + 600 + 15
    assert valuation.unrealized_gain == D("140.4")  # 1356 - 1215.6
    assert valuation.realized_gain == D("189.6")  # 199.6 - 10
    assert valuation.dividends == D("1.50")
    assert valuation.fees == D("1.23")
    assert valuation.unpriced_count == 0
    assert valuation.weight(aapl_h) == D("720") / D("1356.0")


def test_holdings_are_listed_largest_value_first_then_by_symbol_and_those_without_a_value_last(portfolio):
    for symbol, close in (("B", D("10")), ("Z", None), ("A", D("10")), ("C", D("20")), ("Y", None)):
        instrument = InstrumentFactory(symbol=symbol)
        # a transfer in at price 0 and no close: nothing values it
        TransactionFactory(portfolio=portfolio, instrument=instrument, quantity=D("1"), price=D("0"))
        if close is not None:
            PriceFactory(instrument=instrument, date=date(2024, 3, 4), close=close)

    valuation = portfolio_valuation_get(portfolio=portfolio, now=NOW)

    assert [(h.instrument.symbol, h.market_value) for h in valuation.holdings] == [
        ("C", D("20")), ("A", D("10")), ("B", D("10")), ("Y", None), ("Z", None)]


def test_spent_cash_is_no_closed_position_but_its_currency_gain_is_realized(api):
    # given 1000 EUR deposited at 1.10 USD and withdrawn at 1.25: the cash sold realizes 150 USD; spent cash is no
    # position of the portfolio's to list as closed, but what it realized counts (as 999.99 EUR withdrawn would:
    # tests/portfolio/test_cash.py)
    fx_rates_store(base="EUR", series={date(2024, 3, 1): {"USD": D("1.10")}, date(2024, 3, 5): {"USD": D("1.25")}})
    portfolio_id = api.post("/api/portfolios/", {"name": "Main"}, format="json").json()["id"]
    bank = api.post(f"/api/portfolios/{portfolio_id}/accounts/", {"name": "Bank", "currency": "EUR"},
                    format="json").json()
    for kind, day in (("DEPOSIT", "2024-03-01"), ("WITHDRAWAL", "2024-03-05")):
        movement = {"type": kind, "date": day, "price": "1000", "currency": "EUR", "account": bank["id"]}
        assert api.post(f"/api/portfolios/{portfolio_id}/transactions/", movement, format="json").status_code == 201

    valuation = portfolio_valuation_get(portfolio=Portfolio.objects.get(pk=portfolio_id), now=NOW)

    assert (valuation.holdings, valuation.closed) == ([], [])
    assert (valuation.realized_gain, valuation.dividends, valuation.fees) == (150, 0, 0)


def test_each_account_holds_its_own_buys_and_sells_and_a_split_multiplies_every_accounts_shares():
    def row(kind, quantity, instrument_id=1):
        return TransactionRow(instrument_id, kind, date(2024, 1, 2), D(quantity), D("10"), D("0"), "USD")

    rows = [row("BUY", "5"), row("BUY", "3"), row("BUY", "4", 2), row("DEPOSIT", "1", None), row("SELL", "1"),
            row("BUY", "2"), row("SPLIT", "2"), row("SELL", "6")]
    accounts = [1, 2, 2, 1, 1, None, 1, 2]

    assert account_quantities_compute(rows, accounts) == {1: {1: D("8")}, 2: {1: D("0"), 2: D("4")}, None: {1: D("4")}}


def test_in_one_account_the_quantities_are_the_positions_and_a_split_before_any_trade_changes_nothing(
        portfolio, monkeypatch):
    """Every transaction in the default account: its quantities are read off the valuation's positions, the
    same numbers — except for an instrument split before its first trade, whose position multiplied a zero (a
    quantity with more decimals); the account's are then replayed on their own, as with several accounts."""
    early, plain = InstrumentFactory(symbol="EARLY"), InstrumentFactory(symbol="PLAIN")
    TransactionFactory(portfolio=portfolio, instrument=plain, quantity=D("4"))
    TransactionFactory(portfolio=portfolio, instrument=plain, type="SELL", date=date(2024, 1, 3), quantity=D("1"))
    account = portfolio.accounts.get()
    replay_of_accounts = selectors.account_quantities_compute
    monkeypatch.setattr(selectors, "account_quantities_compute", None)  # not replayed: read off the positions

    valuation = portfolio_valuation_get(portfolio=portfolio, now=NOW)

    assert {pk: str(q) for pk, q in valuation.account_quantities[account.pk].items()} == {plain.pk: "3.0000000000"}
    for day in (date(2024, 1, 3), date(2024, 1, 4)):
        TransactionFactory(portfolio=portfolio, instrument=early, type="SPLIT", date=day, quantity=D("2"))
    TransactionFactory(portfolio=portfolio, instrument=early, date=date(2024, 1, 5), quantity=D("5"))
    monkeypatch.setattr(selectors, "account_quantities_compute", replay_of_accounts)

    valuation = portfolio_valuation_get(portfolio=portfolio, now=NOW)

    assert {pk: str(q) for pk, q in valuation.account_quantities[account.pk].items()} == {
        plain.pk: "3.0000000000", early.pk: "5.0000000000"}
    assert str(next(h for h in valuation.holdings if h.instrument.pk == early.pk)
               .quantity) == "5.0000000000"  # 0 × 2 × 2 + 5, a split keeping a quantity's stored places


def test_each_account_holds_its_own_shares_of_an_instrument_held_in_several(portfolio):
    instrument = InstrumentFactory(symbol="BOTH")
    default = portfolio.accounts.get()
    broker = Account.objects.create(portfolio=portfolio, name="Broker", currency="USD")
    TransactionFactory(portfolio=portfolio, instrument=instrument, quantity=D("4"))
    TransactionFactory(portfolio=portfolio, instrument=instrument, account=broker, quantity=D("1"))

    valuation = portfolio_valuation_get(portfolio=portfolio, now=NOW)

    assert valuation.account_quantities == {default.pk: {instrument.pk: D("4")}, broker.pk: {instrument.pk: D("1")}}


def _portfolio_with(holdings: int):
    """Half the holdings with two closes, half hand-priced (no close: their trade is their price)."""
    portfolio = PortfolioFactory()
    for n in range(holdings):
        instrument = InstrumentFactory(symbol=f"Q{holdings}X{n}")
        TransactionFactory(portfolio=portfolio, instrument=instrument)
        if n % 2:
            continue
        PriceFactory(instrument=instrument, date=date(2024, 1, 2))
        PriceFactory(instrument=instrument, date=date(2024, 1, 3), close=D("101"))
    return portfolio


def test_valuation_query_count_does_not_grow_with_holdings():
    counts = []
    for size in (6, 60):
        portfolio = _portfolio_with(size)
        with CaptureQueriesContext(connection) as replayed:
            valuation = portfolio_valuation_get(portfolio=portfolio)
        with CaptureQueriesContext(connection) as kept:
            assert portfolio_valuation_get(portfolio=portfolio) == valuation
        assert len(valuation.holdings) == size
        assert valuation.total_value == (D("1010") + D("1000")) * size / 2
        counts.append((len(replayed), len(kept)))
    if connection.vendor == "postgresql":
        # Replayed: the replay version, the transactions, their instruments with their latest closes, the replay
        # kept (in a savepoint here, within the test's transaction). Then from the kept replay: the version with
        # the replay, its instruments with their closes.
        assert counts[0] == counts[1] == (6, 2)
    else:  # nothing kept: the transactions, their instruments, their closes
        assert counts[0] == counts[1] == (3, 3)


@pytest.mark.parametrize("server_side_binding", [False, True])
def test_the_header_and_accounts_come_with_the_valuation_in_its_queries(server_side_binding, monkeypatch):
    # server-side binding prepares one command at a time: the header then takes a query of its own
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {**connection.settings_dict["OPTIONS"],
                                                              "server_side_binding": server_side_binding})
    if server_side_binding and connection.vendor == "postgresql":
        # Django picks the cursor class as it connects, from the same option: the test's connection (its
        # transaction kept) gets the class a connection made with the option would have
        connection.ensure_connection()
        monkeypatch.setattr(connection.connection, "cursor_factory", ServerBindingCursor)
        with connection.cursor() as cursor:
            assert isinstance(cursor.cursor, ServerBindingCursor)
    portfolio = _portfolio_with(6)
    portfolio.name = "Ünï; 'quoted'"
    portfolio.save()
    broker = Account.objects.create(portfolio=portfolio, name="Broker", platform="IB", currency="EUR")
    old = Account.objects.create(portfolio=portfolio, name="Old", currency="USD", tracks_cash=False)
    with CaptureQueriesContext(connection) as queries:
        header, accounts, valuation = portfolio_accounts_valuation_get(portfolio_id=portfolio.pk, now=NOW)
    assert header == PortfolioHeader(portfolio.pk, "Ünï; 'quoted'", "USD")
    default = Account.objects.filter(portfolio=portfolio).order_by("id").first()  # made with the portfolio
    assert accounts == [AccountRow(default.pk, default.name, "", "USD", False),
                        AccountRow(broker.pk, "Broker", "IB", "EUR", True), AccountRow(old.pk, "Old", "", "USD", False)]
    assert valuation == portfolio_valuation_get(portfolio=portfolio, now=NOW)
    # The header and the day's trades ride with the kept replay's version on Postgres: the valuation's queries
    # (replayed, as test_valuation_query_count_does_not_grow_with_holdings counts them), no more (a query each
    # with server-side binding, which prepares one command at a time).
    assert len(queries) == (6 + 2 * server_side_binding if connection.vendor == "postgresql" else 6)
    pk = portfolio.pk
    portfolio.delete()
    with pytest.raises(Portfolio.DoesNotExist):
        portfolio_accounts_valuation_get(portfolio_id=pk, now=NOW)


def test_a_trade_newer_than_the_latest_close_is_the_price(portfolio):
    # given closes up to 4 Mar, a buy at 125 on 5 Mar, and for another instrument a buy on the day of its close
    aaa = InstrumentFactory(symbol="AAA")
    bbb = InstrumentFactory(symbol="BBB")
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 3, 1), quantity=D("1"), price=D("100"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 3, 5), quantity=D("1"), price=D("125"))
    TransactionFactory(portfolio=portfolio, instrument=bbb, date=date(2024, 3, 6), quantity=D("1"), price=D("51"))
    PriceFactory(instrument=aaa, date=date(2024, 3, 1), close=D("100"))
    PriceFactory(instrument=aaa, date=date(2024, 3, 4), close=D("120"))
    PriceFactory(instrument=bbb, date=date(2024, 3, 6), close=D("50"))

    by_symbol = {h.instrument.symbol: h for h in portfolio_valuation_get(portfolio=portfolio, now=NOW).holdings}

    aaa_h, bbb_h = by_symbol["AAA"], by_symbol["BBB"]
    assert (aaa_h.price, aaa_h.price_as_of, aaa_h.market_value, aaa_h.previous_close) == (
        D("125"), date(2024, 3, 5), D("250"), None)
    assert aaa_h.stale is True  # 5 Mar is older than 6 Mar's close, which should exist by now
    # the close is the end of its day: it wins over that day's trade
    assert (bbb_h.price, bbb_h.price_as_of, bbb_h.market_value, bbb_h.stale) == (
        D("50"), date(2024, 3, 6), D("50"), False)


def test_a_split_after_the_latest_observation_divides_it(portfolio):
    # given 1 bought at 1200 (no close), then a 10-for-1 split; and 5 of another instrument whose last two
    # closes straddle its 2-for-1 split (200 before it, 101 on its day)
    art = InstrumentFactory(symbol="ART", provider="manual")
    aaa = InstrumentFactory(symbol="AAA")
    TransactionFactory(portfolio=portfolio, instrument=art, date=date(2024, 3, 1), quantity=D("1"), price=D("1200"))
    TransactionFactory(portfolio=portfolio, instrument=art, type="SPLIT", date=date(2024, 3, 4), quantity=D("10"),
                       price=D("0"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, date=date(2024, 3, 1), quantity=D("5"), price=D("190"))
    TransactionFactory(portfolio=portfolio, instrument=aaa, type="SPLIT", date=date(2024, 3, 6), quantity=D("2"),
                       price=D("0"))
    PriceFactory(instrument=aaa, date=date(2024, 3, 5), close=D("200"))
    PriceFactory(instrument=aaa, date=date(2024, 3, 6), close=D("101"))

    by_symbol = {h.instrument.symbol: h for h in portfolio_valuation_get(portfolio=portfolio, now=NOW).holdings}

    art_h, aaa_h = by_symbol["ART"], by_symbol["AAA"]
    assert (art_h.quantity, art_h.price, art_h.price_as_of, art_h.market_value) == (
        D("10"), D("120"), date(2024, 3, 1), D("1200"))
    # the day change compares the same shares: 10 × (101 − 200 / 2)
    assert (aaa_h.quantity, aaa_h.price, aaa_h.previous_close, aaa_h.market_value) == (
        D("10"), D("101"), D("100"), D("1010"))


def test_a_split_recorded_on_a_day_without_a_close_divides_the_close_before_it_not_the_one_after(portfolio):
    # given 10 shares closing 1200 on Friday 1 March, split 10-for-1 on Saturday 2 March, closing 121 on Monday 4
    nvd = InstrumentFactory(symbol="NVD")
    TransactionFactory(portfolio=portfolio, instrument=nvd, date=date(2024, 2, 28), quantity=D("10"),
                       price=D("1100"))
    TransactionFactory(portfolio=portfolio, instrument=nvd, type="SPLIT", date=date(2024, 3, 2), quantity=D("10"),
                       price=D("0"))
    PriceFactory(instrument=nvd, date=date(2024, 3, 1), close=D("1200"))
    PriceFactory(instrument=nvd, date=date(2024, 3, 4), close=D("121"))

    holding = portfolio_valuation_get(portfolio=portfolio, now=NOW).holdings[0]

    # then the day change compares Monday's 121 with Friday's 1200 per share of today, 120: 100 × 1, not 100 ×
    # (121 − 1200)
    assert (holding.quantity, holding.price, holding.previous_close, holding.market_value) == (
        D("100"), D("121"), D("120"), D("12100"))


def test_a_trade_in_another_currency_is_priced_in_the_instruments_at_its_days_rates(portfolio):
    # given a USD-quoted coin bought for 100 EUR when 1 EUR = 1.10 USD, in a EUR portfolio, no close
    portfolio.base_currency = "EUR"
    portfolio.save()
    fx_rates_store(base="EUR", series={date(2024, 3, 1): {"USD": D("1.10")}, date(2024, 3, 5): {"USD": D("1.25")}})
    coin = InstrumentFactory(symbol="COIN", currency="USD", exchange_mic="", provider="manual")
    TransactionFactory(portfolio=portfolio, instrument=coin, date=date(2024, 3, 1), quantity=D("2"), price=D("100"),
                       currency="EUR")

    holding = portfolio_valuation_get(portfolio=portfolio, now=NOW).holdings[0]

    assert (holding.price, holding.price_as_of) == (D("110"), date(2024, 3, 1))  # in USD, as quoted
    # valued at today's rate: 2 × 110 USD = 220 USD = 176 EUR
    assert (holding.market_value, holding.cost_basis) == (D("176"), D("200"))


def test_a_transfer_at_price_zero_is_no_price(portfolio):
    gift = InstrumentFactory(symbol="GIFT")
    TransactionFactory(portfolio=portfolio, instrument=gift, date=date(2024, 3, 1), quantity=D("3"), price=D("0"))

    valuation = portfolio_valuation_get(portfolio=portfolio, now=NOW)

    assert (valuation.holdings[0].price, valuation.holdings[0].market_value) == (None, None)
    assert (valuation.unpriced_count, valuation.total_value, valuation.total_cost) == (1, D("0"), D("0"))


def test_foreign_holdings_are_valued_in_the_base_currency(portfolio):
    # given a USD portfolio holding an EUR stock bought when 1 USD = 0.90 EUR, priced when 1 USD = 0.80 EUR
    fx_rates_store(base="USD", series={date(2024, 1, 2): {"EUR": D("0.90")}, date(2024, 3, 1): {"EUR": D("0.80")}})
    sap = InstrumentFactory(symbol="SAP.DE", currency="EUR", exchange_mic="XETR")
    TransactionFactory(portfolio=portfolio, instrument=sap, currency="EUR", quantity=D("10"), price=D("90"),
                       fee=D("9"), date=date(2024, 1, 2))
    PriceFactory(instrument=sap, date=date(2024, 3, 4), close=D("100"))

    holding = portfolio_valuation_get(portfolio=portfolio).holdings[0]

    assert holding.price == D("100")  # as quoted, in EUR
    assert holding.cost_basis == D("909") / D("0.90")  # 1010 USD
    assert holding.market_value == D("1000") / D("0.80")  # 1250 USD
    assert holding.unrealized_gain == D("240")  # the currency effect is part of the gain


def test_a_missing_fx_rate_flags_the_holding_instead_of_converting_at_one(portfolio):
    sap = InstrumentFactory(symbol="SAP.DE", currency="EUR", exchange_mic="XETR")
    aapl = InstrumentFactory(symbol="AAPL")
    TransactionFactory(portfolio=portfolio, instrument=sap, currency="EUR")
    TransactionFactory(portfolio=portfolio, instrument=aapl)
    PriceFactory(instrument=sap, date=date(2024, 3, 4), close=D("100"))
    PriceFactory(instrument=aapl, date=date(2024, 3, 4), close=D("110"))

    valuation = portfolio_valuation_get(portfolio=portfolio)

    by_symbol = {h.instrument.symbol: h for h in valuation.holdings}
    assert by_symbol["SAP.DE"].fx_missing is True and by_symbol["SAP.DE"].market_value is None
    assert by_symbol["SAP.DE"].cost_basis is None  # bought with no rate: its cost is unknown, never at 1
    assert valuation.fx_missing_count == 1
    assert valuation.total_value == D("1100") and valuation.total_cost == D("1000")


def test_base_currency_units_and_foreign_trades_replay_to_the_same_totals(user):
    """A GBP portfolio: GBP trades are applied as they are, GBp ones at the fixed 0.01 and USD ones at their day's
    rate (the valuation's three paths), sells, a split, dividends net of tax and fees adding up exactly."""
    portfolio = PortfolioFactory(owner=user, base_currency="GBP")
    home = InstrumentFactory(symbol="HOME", currency="GBP", exchange_mic="")
    pence = InstrumentFactory(symbol="PENCE", currency="GBp", exchange_mic="")
    dollar = InstrumentFactory(symbol="DOLLAR", currency="USD", exchange_mic="")
    fx_rates_store(base="USD", series={date(2024, 1, 2): {"GBP": D("0.8")}, date(2024, 3, 1): {"GBP": D("0.75")}})

    def trade(instrument, kind, day, quantity, price, fee="0", currency=None):
        TransactionFactory(portfolio=portfolio, instrument=instrument, type=kind, date=day, quantity=D(quantity),
                           price=D(price), fee=D(fee), currency=currency or instrument.currency)

    trade(home, "BUY", date(2024, 1, 2), "10", "5", "1")  # cost 51
    trade(home, "SELL", date(2024, 2, 1), "4", "6", "0.5")  # 24 − 0.5 − 51 × 4/10 = 3.10 realized; 30.60 left
    trade(home, "SPLIT", date(2024, 2, 2), "2", "0")  # 12 shares, same cost
    trade(home, "DIVIDEND", date(2024, 2, 5), "12", "0.25", "0.3")  # 3.00 gross, 0.30 withheld
    trade(pence, "BUY", date(2024, 1, 2), "100", "250")  # 100 × 250p = 250.00
    trade(pence, "DIVIDEND", date(2024, 2, 5), "100", "10")  # 100 × 10p = 10.00
    trade(dollar, "BUY", date(2024, 1, 2), "2", "100", "1")  # (200 + 1) × 0.8 = 160.80
    trade(dollar, "SELL", date(2024, 3, 1), "1", "110")  # 110 × 0.75 − 80.40 = 2.10 realized; 80.40 left

    valuation = portfolio_valuation_get(portfolio=portfolio, now=NOW)

    by_symbol = {h.instrument.symbol: h for h in valuation.holdings}
    assert (by_symbol["HOME"].quantity, by_symbol["HOME"].cost_basis) == (D("12"), D("30.6"))
    assert by_symbol["PENCE"].cost_basis == D("250")
    assert by_symbol["DOLLAR"].cost_basis == D("80.4")
    assert valuation.total_cost == D("361.0")
    assert valuation.realized_gain == D("5.2")  # 3.10 + 2.10
    assert valuation.dividends == D("13")  # 3.00 + 10.00
    assert valuation.fees == D("2.6")  # 1 + 0.5 + 0.3 + 1 × 0.8
