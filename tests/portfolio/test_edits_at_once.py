"""Two writes to one portfolio at the same moment (portfolio/services.py takes the portfolio's lock): each one
sees what the other committed, so neither is lost nor undoes the other. Whichever order the two run in, the
outcome asserted holds: the delays only make the race likely (the first holds its transaction open)."""

import time
from datetime import date
from decimal import Decimal

import pytest

from portfolio.models import Account, Transaction
from tests.concurrency import transactions_at_once
from tests.factories import InstrumentFactory, PriceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def tx_url(portfolio_id: int, transaction_id: int | None = None) -> str:
    return f"/api/portfolios/{portfolio_id}/transactions/" + (f"{transaction_id}/" if transaction_id else "")


@pytest.fixture
def bought(api) -> tuple[int, int]:
    """A portfolio holding 10 AAA: (its id, the buy's id)."""
    aaa = InstrumentFactory(symbol="AAA", currency="USD")
    PriceFactory(instrument=aaa, date=date(2024, 6, 3), close=Decimal("110"))
    portfolio_id = api.post("/api/portfolios/", {"name": "Main", "base_currency": "USD"}, format="json").json()["id"]
    buy = api.post(tx_url(portfolio_id), {"type": "BUY", "symbol": "AAA", "date": "2024-01-03", "quantity": "10",
                                          "price": "100", "fee": "0", "currency": "USD"}, format="json")
    assert buy.status_code == 201, buy.json()
    return portfolio_id, buy.json()["id"]


def _slow(call, *, before: float = 0.0, after: float = 0.0):
    """`call` begun `before` seconds late, its transaction held `after` seconds before it commits."""
    def run():
        time.sleep(before)
        response = call()
        time.sleep(after)
        assert response.status_code < 500, response.content
    return run


def test_two_patches_of_one_transaction_at_once_keep_both_changes(api, bought):
    portfolio_id, buy = bought
    # one tab changes the quantity, another the note a moment later, before the first has committed
    errors = transactions_at_once(
        _slow(lambda: api.patch(tx_url(portfolio_id, buy), {"quantity": "8"}, format="json"), after=0.5),
        _slow(lambda: api.patch(tx_url(portfolio_id, buy), {"note": "limit order"}, format="json"), before=0.1))
    assert errors == []
    # (the second wrote back the quantity it had read before the first committed: 10)
    tx = Transaction.objects.get(pk=buy)
    assert (tx.quantity, tx.note) == (Decimal("8"), "limit order")


def test_an_edit_racing_a_delete_does_not_bring_the_transaction_back(api, bought):
    portfolio_id, buy = bought
    errors = transactions_at_once(
        _slow(lambda: api.delete(tx_url(portfolio_id, buy)), after=0.5),
        _slow(lambda: api.patch(tx_url(portfolio_id, buy), {"note": "limit order"}, format="json"), before=0.1))
    assert errors == []
    # the delete answered 204: the transaction stays gone (the late edit's save inserted it again)
    assert not Transaction.objects.filter(pk=buy).exists()


def test_an_account_stops_tracking_cash_only_without_deposits_even_when_one_is_added_at_once(api, bought):
    portfolio_id, _ = bought
    broker = api.post(f"/api/portfolios/{portfolio_id}/accounts/", {"name": "Broker"}, format="json").json()["id"]
    errors = transactions_at_once(
        _slow(lambda: api.post(tx_url(portfolio_id), {"type": "DEPOSIT", "date": "2024-01-02", "price": "1000",
                                                      "fee": "0", "currency": "USD", "account": broker},
                               format="json"), after=0.5),
        _slow(lambda: api.patch(f"/api/portfolios/{portfolio_id}/accounts/{broker}/", {"tracks_cash": False},
                                format="json"), before=0.1))
    assert errors == []
    # one of the two is refused: never a deposit in an account that does not track cash (it counts nowhere)
    assert not (Account.objects.get(pk=broker).tracks_cash is False
                and Transaction.objects.filter(account_id=broker, type="DEPOSIT").exists())
