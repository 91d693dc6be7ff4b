"""Portfolio write services: cache-version bumps in real Redis, atomicity, instrument sharing."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portfolio.cache import portfolio_version_get
from portfolio.models import Portfolio, Transaction
from portfolio.services import (
    TransactionInput,
    portfolio_create,
    transaction_create,
    transaction_delete,
    transaction_update,
)
from portfolio.signals import portfolios_changed
from prices.models import Instrument, Provider
from prices.services import PricePoint, prices_upsert
from tests.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


def buy(symbol="AAPL", quantity="10", on=date(2024, 1, 2), **extra) -> TransactionInput:
    fields = {"symbol": symbol, "type": "BUY", "date": on, "quantity": Decimal(quantity),
              "price": Decimal("100"), "fee": Decimal("0"), "currency": "USD", **extra}
    return TransactionInput(**fields)


def test_every_write_bumps_the_portfolio_version_after_commit(portfolio, django_capture_on_commit_callbacks):
    assert portfolio_version_get(portfolio_id=portfolio.pk) == 0
    with django_capture_on_commit_callbacks(execute=True):
        tx = transaction_create(portfolio=portfolio, data=buy())
    assert portfolio_version_get(portfolio_id=portfolio.pk) == 1
    with django_capture_on_commit_callbacks(execute=True):
        transaction_update(transaction_obj=tx, data=buy(quantity="12"))
    assert portfolio_version_get(portfolio_id=portfolio.pk) == 2
    with django_capture_on_commit_callbacks(execute=True):
        transaction_delete(transaction_obj=tx)
    assert portfolio_version_get(portfolio_id=portfolio.pk) == 3


def test_a_rejected_write_does_not_bump_the_version(portfolio, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError):
        transaction_create(portfolio=portfolio, data=buy(quantity="-1"))
    assert portfolio_version_get(portfolio_id=portfolio.pk) == 0


def test_an_existing_instrument_keeps_its_provider(portfolio):
    InstrumentFactory(symbol="BTC", provider=Provider.COINGECKO, asset_class="crypto")
    tx = transaction_create(portfolio=portfolio, data=buy(symbol="btc", provider="yahoo"))
    assert tx.instrument.provider == Provider.COINGECKO
    assert Instrument.objects.filter(symbol="BTC").count() == 1


def test_symbols_are_normalized(portfolio):
    tx = transaction_create(portfolio=portfolio, data=buy(symbol="  brk-b "))
    assert tx.instrument.symbol == "BRK-B"


def test_moving_a_transaction_to_another_symbol_checks_the_old_history(portfolio):
    first = transaction_create(portfolio=portfolio, data=buy(symbol="AAPL"))
    transaction_create(portfolio=portfolio, data=TransactionInput(
        symbol="AAPL", type="SELL", date=date(2024, 2, 1), quantity=Decimal("5"), price=Decimal("110"),
        fee=None, currency="USD"))
    with pytest.raises(ValidationError) as raised:
        transaction_update(transaction_obj=first, data=buy(symbol="MSFT"))
    assert "quantity" in raised.value.message_dict
    assert Transaction.objects.get(pk=first.pk).instrument.symbol == "AAPL"


def test_split_and_fee_defaults(portfolio):
    transaction_create(portfolio=portfolio, data=buy())
    split = transaction_create(portfolio=portfolio, data=TransactionInput(
        symbol="AAPL", type="SPLIT", date=date(2024, 6, 1), quantity=Decimal("4"), price=None, fee=None,
        currency="USD"))
    fee = transaction_create(portfolio=portfolio, data=TransactionInput(
        symbol="AAPL", type="FEE", date=date(2024, 6, 2), quantity=None, price=None, fee=Decimal("9.99"),
        currency="usd"))
    assert (split.price, split.fee) == (Decimal("0"), Decimal("0"))
    assert (fee.quantity, fee.fee, fee.currency) == (Decimal("0"), Decimal("9.99"), "USD")


def test_pence_quoted_currency_is_accepted_for_london_listings(portfolio):
    tx = transaction_create(portfolio=portfolio, data=buy(symbol="VOD.L", currency="GBp"))
    assert tx.currency == "GBp"


def test_portfolio_names_are_unique_per_owner_only(user, other_user):
    portfolio_create(owner=user, name="Main")
    portfolio_create(owner=other_user, name="Main")
    with pytest.raises(ValidationError) as raised:
        portfolio_create(owner=user, name=" Main ")
    assert list(raised.value.message_dict) == ["name"]


def test_todays_closes_alone_leave_the_history_version_and_earlier_ones_move_it(portfolio,
                                                                                 django_capture_on_commit_callbacks):
    # given a portfolio holding AAPL (and what portfolios_changed says after each write)
    with django_capture_on_commit_callbacks(execute=True):
        transaction_create(portfolio=portfolio, data=buy())
    aapl = Instrument.objects.get(symbol="AAPL")
    announced = []

    def receive(sender, *, portfolio_ids, since=None, history=True, **kwargs):
        announced.append((portfolio_ids, since, history))

    portfolios_changed.connect(receive, dispatch_uid="test.history_version")
    try:
        versions = lambda: Portfolio.objects.values_list("data_version", "history_version").get(  # noqa: E731
            pk=portfolio.pk)
        before = versions()
        today = timezone.localdate()

        # when an intraday refresh writes today's close: the data version moves, the history's does not
        with django_capture_on_commit_callbacks(execute=True):
            prices_upsert(instrument=aapl, points=[PricePoint(date=today, close=Decimal("190"))], source="yahoo")
        assert versions() == (before[0] + 1, before[1])
        assert announced[-1] == ([portfolio.pk], today, False)

        # when a close of an earlier day is written (a new completed day, a correction): both move
        yesterday = today - timedelta(days=1)
        with django_capture_on_commit_callbacks(execute=True):
            prices_upsert(instrument=aapl, points=[PricePoint(date=yesterday, close=Decimal("185"))], source="yahoo")
        assert versions() == (before[0] + 2, before[1] + 1)
        assert announced[-1] == ([portfolio.pk], yesterday, True)

        # when that close is written again unchanged: nothing moves, nothing is announced
        with django_capture_on_commit_callbacks(execute=True):
            prices_upsert(instrument=aapl, points=[PricePoint(date=yesterday, close=Decimal("185.000"))],
                          source="yahoo")
        assert versions() == (before[0] + 2, before[1] + 1)
        assert len(announced) == 2
    finally:
        portfolios_changed.disconnect(dispatch_uid="test.history_version")


def test_a_trade_in_a_portfolio_without_withdrawals_reads_only_its_instruments_transactions(portfolio):
    for symbol in ("MSFT", "NVDA", "KO", "PG"):
        transaction_create(portfolio=portfolio, data=buy(symbol=symbol))
    transaction_create(portfolio=portfolio, data=buy(symbol="AAPL"))
    with CaptureQueriesContext(connection) as queries:
        transaction_create(portfolio=portfolio, data=buy(symbol="AAPL", on=date(2024, 1, 3)))
    table = Transaction._meta.db_table
    reads = [query["sql"] for query in queries if query["sql"].startswith("SELECT") and f'FROM "{table}"' in
             query["sql"]]
    # the instrument's own history (no oversell), and whether any withdrawal exists: not every transaction
    assert len(reads) == 2
    assert sum('"instrument_id" =' in sql for sql in reads) == 1
    assert sum("WITHDRAWAL" in sql and "LIMIT 1" in sql for sql in reads) == 1


def test_with_a_withdrawal_a_trade_that_would_leave_it_without_its_cash_is_refused(portfolio):
    account = portfolio.accounts.get()
    account.tracks_cash = True
    account.save()
    cash = {"symbol": "", "type": "DEPOSIT", "date": date(2024, 1, 2), "quantity": None, "price": Decimal("1000"),
            "fee": None, "currency": "USD"}
    transaction_create(portfolio=portfolio, data=TransactionInput(**cash))
    transaction_create(portfolio=portfolio, data=TransactionInput(**{**cash, "type": "WITHDRAWAL",
                                                                     "date": date(2024, 1, 10)}))
    with pytest.raises(ValidationError) as refused:
        transaction_create(portfolio=portfolio, data=buy(quantity="1", on=date(2024, 1, 5)))
    assert "price" in refused.value.message_dict
    assert Transaction.objects.filter(portfolio=portfolio).count() == 2
