"""Cash as a holding (portfolio/cash.py): the cash trades each movement implies, the implicit deposit of a
shortfall, the per-day order, and the migration that gives existing portfolios their default account."""

import importlib
from datetime import date
from decimal import Decimal as D

import pytest
from django.apps import apps

from portfolio.cash import cash_currencies, cash_expand
from portfolio.holdings import TransactionRow
from portfolio.models import Account, Portfolio, Transaction
from portfolio.selectors import portfolio_valuation_get
from prices.fx import fx_rates_store
from tests.factories import InstrumentFactory, PriceFactory, UserFactory

migration = importlib.import_module("portfolio.migrations.0008_default_accounts")

DAY1, DAY2 = date(2024, 1, 2), date(2024, 1, 3)
CASH = {"USD": 900, "GBP": 901}


def row(kind: str, day: date, quantity: str, price: str, fee: str = "0", currency: str = "USD",
        instrument: int | None = 1) -> TransactionRow:
    return TransactionRow(instrument, kind, day, D(quantity), D(price), D(fee), currency)


def cash_rows(expanded) -> list[tuple]:
    return [(tx.type, tx.date, tx.quantity, tx.currency) for tx in expanded if tx.instrument_id in CASH.values()]


def test_each_movement_is_a_trade_of_cash_and_a_shortfall_is_an_implicit_deposit():
    txs = [
        row("DEPOSIT", DAY1, "1", "300", instrument=None),
        row("BUY", DAY1, "5", "100", fee="1"),  # 501: 300 from the cash, 201 brought in
        row("SELL", DAY2, "2", "120", fee="1"),  # 239 in
        row("DIVIDEND", DAY2, "3", "0.5", fee="0.2"),  # 1.30 in
        row("FEE", DAY2, "0", "0", fee="5"),  # 5 out
        row("INTEREST", DAY2, "1", "2", fee="0.5", instrument=None),  # 1.50 in, and income
        row("WITHDRAWAL", DAY2, "1", "200", instrument=None),
    ]
    expansion = cash_expand(txs, accounts=[7] * len(txs), tracked={7}, cash_ids=CASH)
    assert cash_rows(expansion.transactions) == [
        ("BUY", DAY1, D("300"), "USD"), ("SELL", DAY1, D("300"), "USD"),
        ("DIVIDEND", DAY2, D("1"), "USD"),  # the interest: income of the cash
        ("BUY", DAY2, D("239"), "USD"), ("BUY", DAY2, D("1.30"), "USD"), ("BUY", DAY2, D("1.5"), "USD"),
        ("SELL", DAY2, D("5"), "USD"), ("SELL", DAY2, D("200"), "USD"),
    ]
    assert expansion.balances == {(7, "USD"): D("36.80")}  # 239 + 1.30 + 1.50 − 5 − 200
    assert expansion.overdrawn == []
    # the portfolio's own trades are all there, the cash types replaced by the cash's
    assert [tx.type for tx in expansion.transactions if tx.instrument_id == 1] == ["BUY", "SELL", "DIVIDEND", "FEE"]


def test_a_days_inflows_count_before_its_outflows_whatever_the_entry_order():
    txs = [row("BUY", DAY1, "1", "100"), row("DEPOSIT", DAY1, "1", "100", instrument=None)]
    expansion = cash_expand(txs, accounts=[7, 7], tracked={7}, cash_ids=CASH)
    assert cash_rows(expansion.transactions) == [("BUY", DAY1, D("100"), "USD"), ("SELL", DAY1, D("100"), "USD")]
    assert expansion.balances == {(7, "USD"): D("0")}


def test_cash_is_per_account_and_currency_in_the_major_unit():
    txs = [row("SELL", DAY1, "10", "150", currency="GBp"), row("BUY", DAY2, "1", "1000", currency="GBp")]
    # the sell's 15 GBP are in account 7: the buy in account 8 cannot use them
    expansion = cash_expand(txs, accounts=[7, 8], tracked={7, 8}, cash_ids=CASH)
    assert cash_rows(expansion.transactions) == [("BUY", DAY1, D("15.00"), "GBP")]
    assert expansion.balances == {(7, "GBP"): D("15.00")}


def test_an_account_that_does_not_track_cash_moves_none():
    txs = [row("BUY", DAY1, "5", "100"), row("SELL", DAY2, "2", "120"),
           row("INTEREST", DAY2, "1", "3", instrument=None)]
    expansion = cash_expand(txs, accounts=[None, None, None], tracked=set(), cash_ids=CASH)
    # the trades as they are; interest is still the cash's income (money out, as a dividend always was)
    assert cash_rows(expansion.transactions) == [("DIVIDEND", DAY2, D("1"), "USD")]
    assert expansion.balances == {}


def test_without_cash_tracked_or_moved_the_transactions_are_kept_as_they_are():
    txs = [row("BUY", DAY1, "5", "100"), row("SPLIT", DAY1, "2", "0"), row("SELL", DAY2, "2", "120"),
           row("DIVIDEND", DAY2, "3", "0.5"), row("FEE", DAY2, "0", "0", fee="5"), row("BUY", DAY1, "1", "9")]
    accounts = [None, 3, None, 3, 3, None]
    expansion = cash_expand(txs, accounts=accounts, tracked=set(), cash_ids=CASH)
    # what the day-by-day replay gives when an account tracks cash but none of these is in it
    replayed = cash_expand(txs, accounts=accounts, tracked={99}, cash_ids=CASH)
    assert expansion == replayed
    assert expansion.transactions == txs and expansion.transactions is not txs
    assert all(kept is tx for kept, tx in zip(expansion.transactions, txs, strict=True))
    assert (expansion.balances, expansion.overdrawn) == ({}, [])
    assert cash_currencies(txs, accounts=accounts, tracked=set()) == set()
    # interest needs its cash, tracked or not
    with_interest = [*txs, row("INTEREST", DAY2, "1", "3", currency="GBp", instrument=None)]
    assert cash_currencies(with_interest, accounts=[*accounts, None], tracked=set()) == {"GBP"}
    with pytest.raises(ValueError):  # each transaction has its account, or none: a list short of one is a bug
        cash_expand(txs, accounts=accounts[:-1], tracked=set(), cash_ids=CASH)


def test_a_withdrawal_beyond_the_cash_is_reported_and_takes_what_there_is():
    txs = [row("DEPOSIT", DAY1, "1", "50", instrument=None), row("WITHDRAWAL", DAY2, "1", "80", instrument=None)]
    expansion = cash_expand(txs, accounts=[7, 7], tracked={7}, cash_ids=CASH)
    assert [(tx.type, held) for tx, held in expansion.overdrawn] == [("WITHDRAWAL", D("50"))]
    assert expansion.balances == {(7, "USD"): D("0")}


def test_nothing_held_is_nothing_sold_and_a_withdrawal_from_it_is_overdrawn():
    txs = [row("BUY", DAY1, "2", "10"),  # nothing held: all of it an implicit deposit
           row("WITHDRAWAL", DAY1, "1", "5", instrument=None),
           row("SELL", DAY2, "1", "30"), row("BUY", DAY2, "1", "30"),  # all the cash taken: none left
           row("WITHDRAWAL", DAY2, "1", "1", instrument=None)]
    expansion = cash_expand(txs, accounts=[7] * len(txs), tracked={7}, cash_ids=CASH)
    assert cash_rows(expansion.transactions) == [("BUY", DAY2, D("30"), "USD"), ("SELL", DAY2, D("30"), "USD")]
    assert [(tx.date, held) for tx, held in expansion.overdrawn] == [(DAY1, D("0")), (DAY2, D("0"))]
    assert expansion.balances == {(7, "USD"): D("0")}


def test_an_amount_in_a_major_unit_keeps_its_digits_and_one_in_a_minor_unit_is_converted():
    txs = [row("SELL", DAY1, "3", "1.50", fee="0.20"), row("SELL", DAY1, "2", "125", currency="GBp")]
    expansion = cash_expand(txs, accounts=[7, 7], tracked={7}, cash_ids=CASH)
    # 4.50 − 0.20 as Decimal writes it: 4.30, its trailing zero kept (not normalized); 250 pence are 2.50 GBP
    assert [str(tx.quantity) for tx in expansion.transactions if tx.instrument_id in CASH.values()] == [
        "4.30", "2.50"]


def test_the_currencies_needing_cash_are_those_brought_into_an_account_tracking_it_and_interests():
    txs = [row("BUY", DAY1, "1", "10", currency="EUR"),  # takes cash: needs none
           row("SELL", DAY1, "1", "10", currency="GBp"),  # brings GBP into account 7, which tracks it
           row("DIVIDEND", DAY2, "1", "10", currency="CHF"),  # into account 8, which does not
           row("INTEREST", DAY2, "1", "1", currency="JPY", instrument=None)]  # income of its cash, tracked or not
    assert cash_currencies(txs, accounts=[7, 7, 8, 8], tracked={7}) == {"GBP", "JPY"}
    assert cash_currencies(txs, accounts=[7, 7, 7, 8], tracked={7}) == {"GBP", "CHF", "JPY"}
    with pytest.raises(ValueError):  # a list of accounts short of one is a bug
        cash_currencies(txs, accounts=[7, 7, 7], tracked={7})


@pytest.mark.django_db
def test_the_migration_gives_each_portfolio_a_default_account_not_tracking_cash_and_keeps_its_value():
    # given a portfolio recorded before accounts: a buy and a sell, no account
    owner = UserFactory()
    legacy = Portfolio.objects.create(owner=owner, name="Old", base_currency="EUR")
    stock = InstrumentFactory(symbol="OLD", currency="EUR", exchange_mic="")
    PriceFactory(instrument=stock, date=DAY2, close=D("120"))
    for kind, quantity in (("BUY", "10"), ("SELL", "4")):
        Transaction.objects.create(portfolio=legacy, instrument=stock, type=kind, date=DAY1, quantity=D(quantity),
                                   price=D("100"), currency="EUR")
    with_account = Portfolio.objects.create(owner=owner, name="New", base_currency="USD")
    Account.objects.create(portfolio=with_account, name="Broker", currency="USD")
    before = portfolio_valuation_get(portfolio=legacy)

    migration.default_accounts_create(apps, None)
    migration.default_accounts_create(apps, None)  # a second run changes nothing

    [account] = Account.objects.filter(portfolio=legacy)
    assert (account.name, account.currency, account.tracks_cash) == ("Default", "EUR", False)
    assert set(Transaction.objects.filter(portfolio=legacy).values_list("account_id", flat=True)) == {account.pk}
    assert list(Account.objects.filter(portfolio=with_account).values_list("name", flat=True)) == ["Broker"]
    after = portfolio_valuation_get(portfolio=legacy)
    assert (after.total_value, after.total_cost, after.realized_gain) == (
        before.total_value, before.total_cost, before.realized_gain) == (D("720"), D("600"), D("0"))

    migration.default_accounts_remove(apps, None)
    assert not Account.objects.exists()
    assert Transaction.objects.filter(account__isnull=False).count() == 0


@pytest.mark.django_db
def test_foreign_cash_is_valued_at_todays_rate_and_shows_its_currency_gain(api):
    # given a USD portfolio with a EUR bank account: 1000 EUR deposited at 1.10 USD, worth 1.25 USD today
    fx_rates_store(base="EUR", series={date(2024, 3, 1): {"USD": D("1.10")}, date(2024, 3, 5): {"USD": D("1.25")}})
    portfolio_id = api.post("/api/portfolios/", {"name": "Main"}, format="json").json()["id"]
    bank = api.post(f"/api/portfolios/{portfolio_id}/accounts/", {"name": "Bank", "currency": "EUR"},
                    format="json").json()
    deposit = {"type": "DEPOSIT", "date": "2024-03-01", "price": "1000", "currency": "EUR", "account": bank["id"]}
    assert api.post(f"/api/portfolios/{portfolio_id}/transactions/", deposit, format="json").status_code == 201

    initial = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()

    assert (initial["total_value"], initial["total_cost"], initial["unrealized_gain"]) == (
        "1250.00", "1100.00", "150.00")
    assert [(a["name"], a["cash"], a["total_value"]) for a in initial["accounts"]] == [
        ("Default", [], "0.00"),
        ("Bank", [{"currency": "EUR", "amount": "1000.00", "value": "1250.00"}], "1250.00")]
    [cash] = api.get(f"/api/dashboard-holdings-data/{portfolio_id}/").json()["holdings"]
    assert (cash["symbol"], cash["currency"], cash["quantity"], cash["market_value"]) == (
        "CASH EUR", "EUR", "1000", "1250.00")


@pytest.mark.django_db
@pytest.mark.parametrize(("withdrawn", "left"), [("999.99", ["CASH EUR"]), ("1000", [])])
def test_foreign_cash_spent_to_the_last_cent_keeps_the_currency_gain_it_realized(api, withdrawn, left):
    # given 1000 EUR deposited at 1.10 USD and withdrawn at 1.20 (all of it, or all but a cent)
    fx_rates_store(base="EUR", series={date(2024, 3, 1): {"USD": D("1.10")}, date(2024, 3, 5): {"USD": D("1.20")}})
    portfolio_id = api.post("/api/portfolios/", {"name": "Main"}, format="json").json()["id"]
    bank = api.post(f"/api/portfolios/{portfolio_id}/accounts/", {"name": "Bank", "currency": "EUR"},
                    format="json").json()
    for kind, day, amount in (("DEPOSIT", "2024-03-01", "1000"), ("WITHDRAWAL", "2024-03-05", withdrawn)):
        body = {"type": kind, "date": day, "price": amount, "currency": "EUR", "account": bank["id"]}
        assert api.post(f"/api/portfolios/{portfolio_id}/transactions/", body, format="json").status_code == 201

    initial = api.get(f"/api/dashboard-initial-data/{portfolio_id}/").json()
    holdings = api.get(f"/api/dashboard-holdings-data/{portfolio_id}/").json()["holdings"]

    # then the exchange gain the withdrawal realized counts, whether or not a cent is left to list
    assert initial["realized_gain"] == "100.00"
    assert [h["symbol"] for h in holdings] == left
