"""Valuation of a hand-computed portfolio, and its constant query count."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portfolio.selectors import portfolio_valuation_get
from prices.fx import fx_rates_store
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory

pytestmark = pytest.mark.django_db


def test_valuation_of_a_hand_computed_portfolio(portfolio):
    aapl = InstrumentFactory(symbol="AAPL")
    msft = InstrumentFactory(symbol="MSFT")
    gone = InstrumentFactory(symbol="GONE")
    unpriced = InstrumentFactory(symbol="NEWCO")
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
    assert by_symbol["NEWCO"].price is None and by_symbol["NEWCO"].market_value is None
    assert [h.instrument.symbol for h in valuation.closed] == ["GONE"]

    assert valuation.total_value == D("1341.0")
    assert valuation.total_cost == D("1215.6")  # 600.6 + 600 + 15
    assert valuation.unrealized_gain == D("140.4")  # priced holdings only: 1341 - 1200.6
    assert valuation.realized_gain == D("189.6")  # 199.6 - 10
    assert valuation.dividends == D("1.50")
    assert valuation.fees == D("1.23")
    assert valuation.unpriced_count == 1
    assert valuation.weight(aapl_h) == D("720") / D("1341.0")


def _portfolio_with(holdings: int):
    portfolio = PortfolioFactory()
    for n in range(holdings):
        instrument = InstrumentFactory(symbol=f"Q{holdings}X{n}")
        TransactionFactory(portfolio=portfolio, instrument=instrument)
        PriceFactory(instrument=instrument, date=date(2024, 1, 2))
        PriceFactory(instrument=instrument, date=date(2024, 1, 3), close=D("101"))
    return portfolio


def test_valuation_query_count_does_not_grow_with_holdings():
    counts = []
    for size in (5, 60):
        portfolio = _portfolio_with(size)
        with CaptureQueriesContext(connection) as queries:
            valuation = portfolio_valuation_get(portfolio=portfolio)
        assert len(valuation.holdings) == size
        assert valuation.total_value == D("1010") * size
        counts.append(len(queries))
    assert counts[0] == counts[1] == 3  # transactions, their instruments, the latest closes


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
    assert valuation.fx_missing_count == 1
    assert valuation.total_value == D("1100") and valuation.total_cost == D("1000")
