"""Broker exports mapped onto the generic import: Trading 212 and Charles Schwab, as they export."""

from datetime import date
from decimal import Decimal

import pytest

from portfolio.importing import ImportRejected, transactions_import
from portfolio.models import Account, Transaction
from portfolio.selectors import portfolio_valuation_get

pytestmark = pytest.mark.django_db

T212 = (
    "Action,Time,ISIN,Ticker,Name,No. of shares,Price / share,Currency (Price / share),Exchange rate,Result,"
    "Currency (Result),Total,Currency (Total),Withholding tax,Currency (Withholding tax),Charge amount,"
    "Currency (Charge amount),Notes,ID,Currency conversion fee,Currency (Currency conversion fee)\n"
    "Deposit,2024-01-02 09:00:00,,,,,,,,,,1000.00,GBP,,,,,,\"d1\",,\n"
    "Market buy,2024-01-02 14:35:10,US0378331005,AAPL,Apple,2.5,185.00,USD,1.27,,GBP,364.57,GBP,,,,,,EOF1,0.55,"
    "GBP\n"
    "Limit buy,2024-01-03 08:10:00.123,GB0007980591,BP.,BP,100,465.20,GBX,100.00,,GBP,465.20,GBP,,,,,,EOF2,,\n"
    "Dividend (Ordinary),2024-02-15 10:00:00,US0378331005,AAPL,Apple,2.5,0.24,USD,1.27,,GBP,0.40,GBP,0.09,USD,,,,,,\n"
    "Market sell,2024-03-01 15:00:00,US0378331005,AAPL,Apple,1,180.00,USD,1.26,-4.00,GBP,142.46,GBP,,,,,,EOF3,0.21,"
    "GBP\n"
    "Interest on cash,2024-03-02 00:00:00,,,,,,,,,,0.50,GBP,,,,,,,,\n"
)

SCHWAB = (
    '"Date","Action","Symbol","Description","Quantity","Price","Fees & Comm","Amount"\n'
    '"03/01/2024","Sell","MSFT","MICROSOFT CORP","5","$410.50","$0.03","$2,052.47"\n'
    '"02/15/2024","Qualified Dividend","MSFT","MICROSOFT CORP","","","","$7.50"\n'
    '"02/15/2024","NRA Tax Adj","MSFT","MICROSOFT CORP","","","","-$1.13"\n'
    '"01/03/2024 as of 01/02/2024","Buy","MSFT","MICROSOFT CORP","10","$370.00","","-$3,700.00"\n'
    '"01/02/2024","MoneyLink Transfer","","Tfr BANK","","","","$5,000.00"\n'
    '"03/29/2024","Credit Interest","","SCHWAB1 INT 02/28-03/27","","","","$0.42"\n'
    '"04/02/2024","MoneyLink Transfer","","Tfr BANK","","","","-$1,000.00"\n'
    '"04/03/2024","Journal","","JOURNAL FRM ...123","","","","$0.00"\n'
    '"Transactions Total","","","","","","","$3,359.84"\n'
)


def test_trading212_export_is_mapped_into_the_account_chosen(portfolio):
    wallet = Account.objects.create(portfolio=portfolio, name="Trading 212", currency="GBP")
    result = transactions_import(portfolio=portfolio, content=T212.encode(), account=wallet)
    assert (result.format, result.created, result.skipped_other) == ("trading212", 6, 0)
    rows = list(Transaction.objects.order_by("date", "id").values_list(
        "instrument__symbol", "type", "date", "quantity", "price", "fee", "currency"))
    assert rows == [
        (None, "DEPOSIT", date(2024, 1, 2), Decimal("1"), Decimal("1000"), Decimal("0"), "GBP"),  # Total, its currency
        ("AAPL", "BUY", date(2024, 1, 2), Decimal("2.5"), Decimal("185"), Decimal("0.6985"), "USD"),  # 0.55 GBP × 1.27
        ("BP.", "BUY", date(2024, 1, 3), Decimal("100"), Decimal("465.2"), Decimal("0"), "GBX"),
        ("AAPL", "DIVIDEND", date(2024, 2, 15), Decimal("2.5"), Decimal("0.24"), Decimal("0.09"), "USD"),
        ("AAPL", "SELL", date(2024, 3, 1), Decimal("1"), Decimal("180"), Decimal("0.2646"), "USD"),  # 0.21 × 1.26
        (None, "INTEREST", date(2024, 3, 2), Decimal("1"), Decimal("0.5"), Decimal("0"), "GBP"),
    ]
    assert set(Transaction.objects.values_list("account__name", flat=True)) == {"Trading 212"}
    again = transactions_import(portfolio=portfolio, content=T212.encode(), account=wallet)
    assert (again.created, again.skipped_duplicates) == (0, 6)


def test_an_account_not_tracking_cash_keeps_the_trades_and_interest_but_not_deposits(portfolio):
    # the fixture's default account does not track cash (a portfolio recorded before accounts existed)
    result = transactions_import(portfolio=portfolio, content=T212.encode())
    assert (result.created, result.skipped_other) == (5, 1)  # the deposit left out: its buys bring the money in
    assert sorted(Transaction.objects.values_list("type", flat=True)) == ["BUY", "BUY", "DIVIDEND", "INTEREST",
                                                                          "SELL"]


def test_an_account_of_another_portfolio_is_refused(portfolio, foreign_portfolio):
    theirs = Account.objects.create(portfolio=foreign_portfolio, name="Theirs", currency="USD")
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=T212.encode(), account=theirs)
    assert [(e.row, e.column) for e in raised.value.row_errors] == [(0, "account")]
    assert not Transaction.objects.exists()


def test_schwab_export_is_mapped(portfolio):
    schwab = Account.objects.create(portfolio=portfolio, name="Schwab", currency="USD")
    result = transactions_import(portfolio=portfolio, content=SCHWAB.encode(), account=schwab)
    assert (result.format, result.created, result.skipped_other) == ("schwab", 7, 2)  # the 0 journal, the total
    rows = list(Transaction.objects.order_by("date", "id").values_list(
        "instrument__symbol", "type", "date", "quantity", "price", "fee"))
    # entered oldest first (the file lists the newest first)
    assert rows == [
        (None, "DEPOSIT", date(2024, 1, 2), Decimal("1"), Decimal("5000"), Decimal("0")),
        ("MSFT", "BUY", date(2024, 1, 2), Decimal("10"), Decimal("370"), Decimal("0")),  # the "as of" trade date
        ("MSFT", "FEE", date(2024, 2, 15), Decimal("0"), Decimal("0"), Decimal("1.13")),
        ("MSFT", "DIVIDEND", date(2024, 2, 15), Decimal("1"), Decimal("7.5"), Decimal("0")),
        ("MSFT", "SELL", date(2024, 3, 1), Decimal("5"), Decimal("410.5"), Decimal("0.03")),
        (None, "INTEREST", date(2024, 3, 29), Decimal("1"), Decimal("0.42"), Decimal("0")),
        (None, "WITHDRAWAL", date(2024, 4, 2), Decimal("1"), Decimal("1000"), Decimal("0")),  # a negative transfer
    ]
    again = transactions_import(portfolio=portfolio, content=SCHWAB.encode(), account=schwab)
    assert (again.created, again.skipped_duplicates) == (0, 7)
    # the account's cash: 5,000 in, 3,700 for the buy, 7.50 dividend, 1.13 tax, 2,052.47 from the sale
    # (5 × 410.50 − 0.03), 0.42 interest, 1,000 out
    valuation = portfolio_valuation_get(portfolio=portfolio)
    assert valuation.cash == {(schwab.pk, "USD"): Decimal("2359.26")}


def test_a_schwab_day_trade_is_entered_buy_first(portfolio):
    day_trade = SCHWAB.splitlines()[0] + "\n" + (
        '"05/06/2024","Sell","NVDA","NVIDIA CORP","3","$890.00","$0.02","$2,669.98"\n'
        '"05/06/2024","Buy","NVDA","NVIDIA CORP","3","$880.00","","-$2,640.00"\n')
    assert transactions_import(portfolio=portfolio, content=day_trade.encode()).created == 2
    assert list(Transaction.objects.order_by("date", "id").values_list("type", flat=True)) == ["BUY", "SELL"]


def test_a_broker_row_with_a_bad_value_is_named_by_its_row(portfolio):
    bad = SCHWAB.replace('"10","$370.00"', '"ten","$370.00"')
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=bad.encode())
    assert [(e.row, e.column) for e in raised.value.row_errors] == [(5, "quantity")]
    assert not Transaction.objects.exists()


def test_an_account_deleted_before_the_import_writes_is_refused(portfolio):
    wallet = Account.objects.create(portfolio=portfolio, name="Trading 212", currency="GBP")
    chosen = Account.objects.get(pk=wallet.pk)  # as the request or the job read it
    wallet.delete()  # meanwhile (deleting an account takes the portfolio's lock, as the import does)
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=T212.encode(), account=chosen)
    assert [(e.row, e.column) for e in raised.value.row_errors] == [(0, "account")]
    assert not Transaction.objects.exists()


def test_a_file_of_deposits_only_imports_where_cash_is_tracked_and_is_refused_elsewhere(portfolio):
    header = T212.splitlines()[0]
    deposit = (header + "\nDeposit,2024-01-02 09:00:00,,,,,,,,,,1.00,GBP,,,,,,,,\n").encode()
    with pytest.raises(ImportRejected, match="'Default' does not track cash"):
        transactions_import(portfolio=portfolio, content=deposit)
    assert not Transaction.objects.exists()
    wallet = Account.objects.create(portfolio=portfolio, name="Trading 212", currency="GBP")
    assert transactions_import(portfolio=portfolio, content=deposit, account=wallet).created == 1


def test_a_file_of_currency_conversions_only_is_rejected(portfolio):
    header = T212.splitlines()[0]
    with pytest.raises(ImportRejected, match="no transactions"):
        transactions_import(portfolio=portfolio, content=(header + "\nCurrency conversion,2024-01-02 09:00:00,,,,,,,,,,"
                                                          "1.00,GBP,,,,,,,,\n").encode())


def test_a_trading212_export_resaved_with_decimal_commas_is_refused_naming_the_row(portfolio):
    # a European spreadsheet re-saves it with semicolons and decimal commas: 2,5 shares must never become 25
    lines = T212.splitlines()
    row = ("Market buy;2024-01-02 14:35:10;US0378331005;AAPL;Apple;2,5;185,00;USD;1,27;;GBP;364,57;GBP;;;;;;"
           "EOF1;0,55;GBP")
    resaved = "\n".join([lines[0].replace(",", ";"), row]) + "\n"
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=resaved.encode())
    assert [(e.row, e.column) for e in raised.value.row_errors] == [(2, None)]
    assert "write decimals with a dot" in raised.value.row_errors[0].message
    assert not Transaction.objects.exists()
