"""Export: CSV and JSON of everything a user entered; export → import gives identical holdings."""

from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.importing import transactions_import
from portfolio.models import Account, Portfolio, Transaction
from portfolio.selectors import portfolio_valuation_get
from prices.models import Instrument
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory

pytestmark = pytest.mark.django_db

HISTORY = (
    "date,type,symbol,quantity,price,fee,currency,note\n"
    "2024-01-02,BUY,AAPL,10,185.64,1.00,USD,first buy\n"
    "2024-01-03,BUY,VOD.L,1000,72.5,5,GBp,\n"
    "2024-02-01,SELL,AAPL,4,190.125,1.00,USD,\n"
    "2024-03-15,DIVIDEND,AAPL,6,0.24,0.036,USD,\n"
    "2024-06-10,SPLIT,AAPL,4,0,0,USD,\n"
    "2024-07-01,FEE,AAPL,0,0,2.5,USD,custody\n"
    "2024-08-01,BUY,BTC,0.015,61000.5,0,USD,\n"
)


def holdings(portfolio) -> dict:
    valuation = portfolio_valuation_get(portfolio=portfolio)
    return {h.instrument.symbol: (h.quantity, h.cost_basis, h.realized_gain, h.dividends, h.fees)
            for h in valuation.holdings + valuation.closed}


def test_csv_export_then_import_gives_identical_holdings(api, portfolio, user):
    transactions_import(portfolio=portfolio, content=HISTORY.encode())
    response = api.get(f"/api/portfolios/{portfolio.pk}/transactions/export/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="folio-main-transactions.csv"' in response["Content-Disposition"]
    text = response.content.decode()
    assert text.splitlines()[0] == ("date,type,symbol,quantity,price,fee,currency,note,provider,asset_class,gift,"
                                    "account,account_tracks_cash")
    tracks = "yes" if portfolio.accounts.get().tracks_cash else "no"
    assert f"2024-02-01,SELL,AAPL,4,190.125,1,USD,,simulated,stock,,Default,{tracks}" in text

    copy = PortfolioFactory(owner=user, name="Copy")
    result = transactions_import(portfolio=copy, content=text.encode())
    assert result.created == 7
    assert holdings(copy) == holdings(portfolio)
    assert holdings(copy)["AAPL"][0] == Decimal("24")  # (10 − 4) × 4 after the split


def test_formula_like_notes_are_neutralised_and_restored(api, portfolio):
    TransactionFactory(portfolio=portfolio, note="=HYPERLINK(\"http://evil\",\"x\")")
    TransactionFactory(portfolio=portfolio, note="@SUM(A1)", date=portfolio.transactions.first().date)
    text = api.get(f"/api/portfolios/{portfolio.pk}/transactions/export/").content.decode()
    assert ',"\'=HYPERLINK(' in text and ",'@SUM(A1)" in text
    copy = PortfolioFactory(owner=portfolio.owner, name="Copy")
    transactions_import(portfolio=copy, content=text.encode())
    assert sorted(Transaction.objects.filter(portfolio=copy).values_list("note", flat=True)) == \
        sorted(['=HYPERLINK("http://evil","x")', "@SUM(A1)"])


def test_an_account_name_a_spreadsheet_would_run_is_exported_as_text_and_restored(api, portfolio):
    # given an account named as a formula (a name is free text)
    account = Account.objects.create(portfolio=portfolio, name='=HYPERLINK("http://x";"ISA")')
    TransactionFactory(portfolio=portfolio, account=account)
    text = api.get(f"/api/portfolios/{portfolio.pk}/transactions/export/").content.decode()
    # then its cells are written as text (the account's was written as it was: a live formula in a spreadsheet)
    assert ',"\'=HYPERLINK(' in text and ',"=HYPERLINK(' not in text
    copy = PortfolioFactory(owner=portfolio.owner, name="Copy")
    transactions_import(portfolio=copy, content=text.encode())
    assert list(Account.objects.filter(portfolio=copy).exclude(transactions=None).values_list("name", flat=True)) == [
        '=HYPERLINK("http://x";"ISA")']


def test_json_export_of_a_portfolio(api, portfolio):
    transactions_import(portfolio=portfolio, content=HISTORY.encode())
    body = api.get(f"/api/portfolios/{portfolio.pk}/transactions/export/?format=json").json()
    assert body["portfolio"] == {"name": "Main", "base_currency": "USD"}
    assert body["transactions"][0] == {"date": "2024-01-02", "type": "BUY", "symbol": "AAPL", "quantity": "10",
                                       "price": "185.64", "fee": "1", "currency": "USD", "note": "first buy",
                                       "provider": "simulated", "asset_class": "stock", "gift": "",
                                       "account": "Default", "account_tracks_cash": "no"}


def test_user_export_has_everything_of_mine_only(api, portfolio, foreign_portfolio):
    house = InstrumentFactory(symbol="HOUSE", provider="manual", currency="EUR")
    TransactionFactory(portfolio=portfolio, instrument=house, quantity=Decimal("1"), price=Decimal("300000"))
    PriceFactory(instrument=house, close=Decimal("310000"))
    TransactionFactory(portfolio=foreign_portfolio, instrument=InstrumentFactory(symbol="SECRET"))
    response = api.get("/api/export/")
    assert 'filename="folio-export.json"' in response["Content-Disposition"]
    body = response.json()
    assert (body["format"], body["version"], body["user"]) == ("folio-export", 1, {"username": "alice"})
    assert [p["name"] for p in body["portfolios"]] == ["Main"]
    assert [i["symbol"] for i in body["instruments"]] == ["HOUSE"]
    assert body["manual_prices"] == [{"symbol": "HOUSE", "date": "2024-01-02", "close": "310000"}]
    assert "SECRET" not in response.content.decode()


def test_user_export_keeps_the_watchlist_the_benchmarks_and_the_prices_of_a_manual_instrument_only_watched(
        api, portfolio, other_user):
    # a manual instrument only watched, with a price entered; a benchmark; another user's watched instrument
    added = api.post("/api/watchlist/", {"symbol": "HOUSE", "provider": "manual", "currency": "EUR"}, format="json")
    assert added.status_code == 201, added.content
    written = api.post("/api/instruments/HOUSE/prices/", [{"date": "2024-01-31", "close": "350000"}], format="json")
    assert written.status_code == 201, written.content
    assert api.patch(f"/api/portfolios/{portfolio.pk}/", {"benchmark": "SPY"}, format="json").status_code == 200
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}")
    assert theirs.post("/api/watchlist/", {"symbol": "SECRET", "provider": "manual", "currency": "USD"},
                       format="json").status_code == 201

    body = api.get("/api/export/").json()

    assert [(p["name"], p["benchmark"]) for p in body["portfolios"]] == [("Main", "SPY")]
    assert body["watchlist"] == [{"symbol": "HOUSE", "provider": "manual"}]
    assert [i["symbol"] for i in body["instruments"]] == ["HOUSE", "SPY"]
    assert body["manual_prices"] == [{"symbol": "HOUSE", "date": "2024-01-31", "close": "350000"}]
    assert "SECRET" not in str(body)


def test_export_of_another_users_portfolio_is_404(api, foreign_portfolio):
    assert api.get(f"/api/portfolios/{foreign_portfolio.pk}/transactions/export/").status_code == 404


def test_import_transactions_command(tmp_path, portfolio):
    path = tmp_path / "history.csv"
    path.write_text(HISTORY)
    out, err = StringIO(), StringIO()
    call_command("import_transactions", str(path), "--portfolio", str(portfolio.pk), stdout=out, stderr=err)
    assert "Imported 7 transactions into 'Main' (generic format)" in out.getvalue()
    assert "Checking rows" in err.getvalue()
    path.write_text(HISTORY + "2024-09-01,SELL,AAPL,999,1,0,USD,\n")
    with pytest.raises(CommandError, match=r"row 9 \(quantity\): Selling 999"):
        call_command("import_transactions", str(path), "--portfolio", str(portfolio.pk), stdout=StringIO(),
                     stderr=StringIO())
    assert Transaction.objects.count() == 7


def test_import_transactions_command_into_an_account(tmp_path, portfolio):
    path = tmp_path / "history.csv"
    path.write_text(HISTORY)
    with pytest.raises(CommandError, match=r"No account 'Brokr' in 'Main' \(its accounts: Default\)"):
        call_command("import_transactions", str(path), "--portfolio", str(portfolio.pk), "--account", "Brokr",
                     stdout=StringIO(), stderr=StringIO())
    broker = Account.objects.create(portfolio=portfolio, name="Broker", currency="USD")
    call_command("import_transactions", str(path), "--portfolio", str(portfolio.pk), "--account", "Broker",
                 stdout=StringIO(), stderr=StringIO())
    assert set(Transaction.objects.values_list("account_id", flat=True)) == {broker.pk}


def test_manual_instruments_stay_their_owners_through_export_and_import(api, user, portfolio, other_user):
    # given alice's own hand-priced GOLDBAR at 2000 and the shared AAPL at 200
    rows = ("date,type,symbol,quantity,price,fee,currency,provider\n"
            "2024-01-02,BUY,GOLDBAR,2,1800,0,USD,manual\n"
            "2024-01-02,BUY,AAPL,10,185,0,USD,\n")
    assert api.post(f"/api/portfolios/{portfolio.pk}/transactions/import/", rows,
                    content_type="text/csv").status_code == 201
    assert api.post("/api/instruments/GOLDBAR/prices/", [{"date": "2024-03-01", "close": "2000"}],
                    format="json").status_code == 201
    PriceFactory(instrument=Instrument.objects.get(symbol="AAPL"), date=date(2024, 3, 1), close=Decimal("200"))
    exported = api.get(f"/api/portfolios/{portfolio.pk}/transactions/export/").content.decode()
    assert "2024-01-02,BUY,GOLDBAR,2,1800,0,USD,,manual,stock" in exported

    # when alice imports her export into a second portfolio, and mallory the same file into hers
    mallory = APIClient()
    mallory.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=other_user).key}")
    copy = PortfolioFactory(owner=user, name="Copy")
    theirs = PortfolioFactory(owner=other_user, name="Theirs")
    assert api.post(f"/api/portfolios/{copy.pk}/transactions/import/", exported,
                    content_type="text/csv").status_code == 201
    assert mallory.post(f"/api/portfolios/{theirs.pk}/transactions/import/", exported,
                        content_type="text/csv").status_code == 201

    # then alice's copy holds her own GOLDBAR: the same holdings, valued at her price (2 × 2000 + 10 × 200)
    assert holdings(copy) == holdings(portfolio)
    assert api.get(f"/api/dashboard-initial-data/{copy.pk}/").json()["total_value"] == "6000.00"
    # and mallory's GOLDBAR is her own, valued at her own trade price, never at alice's close (2 × 1800 +
    # 10 × 200), her AAPL the shared one
    assert mallory.get(f"/api/dashboard-initial-data/{theirs.pk}/").json()["total_value"] == "5600.00"
    assert mallory.get("/api/instruments/GOLDBAR/prices/?start=2024-01-01").json()["prices"] == []
    assert sorted(Instrument.objects.filter(symbol="GOLDBAR").values_list("owner__username", flat=True)) == [
        "alice", "mallory"]
    assert Instrument.objects.filter(symbol="AAPL").count() == 1
    # and neither user's full export carries the other's prices
    assert api.get("/api/export/").json()["manual_prices"] == [
        {"symbol": "GOLDBAR", "date": "2024-03-01", "close": "2000"}]
    assert mallory.get("/api/export/").json()["manual_prices"] == []


CASH_HISTORY = (
    "date,type,symbol,quantity,price,fee,currency,account\n"
    "2024-01-02,DEPOSIT,,1,5000,0,USD,Broker\n"
    "2024-01-02,BUY,AAPL,10,185.64,1.00,USD,Broker\n"
    "2024-01-03,DEPOSIT,,,800,,EUR,Bank\n"
    "2024-02-01,SELL,AAPL,4,190.125,1.00,USD,Broker\n"
    "2024-03-01,INTEREST,,1,12.5,3.125,EUR,Bank\n"
    "2024-04-01,WITHDRAWAL,,1,300,0,USD,Broker\n"
)


def test_csv_with_accounts_and_cash_round_trips(api, user):
    # given a portfolio made as a user makes one, importing accounts by name: unknown ones are made
    portfolio_id = api.post("/api/portfolios/", {"name": "Cash"}, format="json").json()["id"]
    response = api.post(f"/api/portfolios/{portfolio_id}/transactions/import/", CASH_HISTORY.encode(),
                        content_type="text/csv")
    assert response.status_code == 201, response.json()
    accounts = api.get(f"/api/portfolios/{portfolio_id}/accounts/").json()
    assert [(a["name"], a["currency"], a["tracks_cash"]) for a in accounts] == [
        ("Default", "USD", True), ("Broker", "USD", True), ("Bank", "USD", True)]
    original = Portfolio.objects.get(pk=portfolio_id)
    cash = portfolio_valuation_get(portfolio=original).cash
    by_name = {a["id"]: a["name"] for a in accounts}
    # 5000 − 1857.40 + 759.50 − 300; 800 + 12.50 − 3.125
    assert {(by_name[a], code): amount for (a, code), amount in cash.items()} == {
        ("Broker", "USD"): Decimal("3602.10"), ("Bank", "EUR"): Decimal("809.375")}

    text = api.get(f"/api/portfolios/{portfolio_id}/transactions/export/").content.decode()
    assert "2024-01-03,DEPOSIT,,1,800,0,EUR,,,,,Bank,yes" in text
    copy_id = api.post("/api/portfolios/", {"name": "Copy"}, format="json").json()["id"]
    assert api.post(f"/api/portfolios/{copy_id}/transactions/import/", text.encode(),
                    content_type="text/csv").status_code == 201
    copy = Portfolio.objects.get(pk=copy_id)
    assert holdings(copy) == holdings(original)
    copied = {(a.name, code): amount for (a_id, code), amount in portfolio_valuation_get(portfolio=copy).cash.items()
              for a in Account.objects.filter(pk=a_id)}
    assert copied == {("Broker", "USD"): Decimal("3602.10"), ("Bank", "EUR"): Decimal("809.375")}
    # importing it again finds every row already there
    again = api.post(f"/api/portfolios/{copy_id}/transactions/import/", text.encode(), content_type="text/csv")
    assert again.json()["skipped_duplicates"] == 6 and again.json()["created"] == 0


def test_an_imported_withdrawal_beyond_the_cash_names_its_row_and_nothing_is_written(api):
    portfolio_id = api.post("/api/portfolios/", {"name": "Cash"}, format="json").json()["id"]
    text = ("date,type,symbol,quantity,price,fee,currency,account\n"
            "2024-01-02,DEPOSIT,,1,100,0,USD,\n"
            "2024-01-03,WITHDRAWAL,,1,100.5,0,USD,\n")
    response = api.post(f"/api/portfolios/{portfolio_id}/transactions/import/", text.encode(), content_type="text/csv")
    assert response.status_code == 400
    assert response.json() == {"errors": [{"row": 3, "column": "price", "message": (
        "Withdrawing 100.5 USD on 2024-01-03 is more than the 100 the account holds on that date.")}]}
    assert not Transaction.objects.filter(portfolio_id=portfolio_id).exists()


def test_an_account_not_tracking_cash_round_trips_into_a_new_portfolio_and_never_into_one_with_its_transactions(
        api, user):
    # given a portfolio recorded before accounts (its default account does not track cash): 10 bought at 100,
    # 4 sold at 120, the proceeds nowhere
    legacy = PortfolioFactory(owner=user, name="Legacy")
    Account.objects.filter(portfolio=legacy).update(tracks_cash=False)
    stock = InstrumentFactory(symbol="OLDS")
    TransactionFactory(portfolio=legacy, instrument=stock, date=date(2024, 3, 1), quantity=Decimal("10"),
                       price=Decimal("100"))
    TransactionFactory(portfolio=legacy, instrument=stock, type="SELL", date=date(2024, 3, 4), quantity=Decimal("4"),
                       price=Decimal("120"))
    text = api.get(f"/api/portfolios/{legacy.pk}/transactions/export/").content.decode()
    assert text.splitlines()[1].endswith(",Default,no")

    # when it is imported into a new portfolio, whose default account tracks cash
    copy_id = api.post("/api/portfolios/", {"name": "Copy"}, format="json").json()["id"]
    response = api.post(f"/api/portfolios/{copy_id}/transactions/import/", text.encode(), content_type="text/csv")

    # then that account takes the file's cash tracking: the same holdings and value, no cash from the sale
    assert response.status_code == 201, response.json()
    copy = Portfolio.objects.get(pk=copy_id)
    assert [(a.name, a.tracks_cash) for a in copy.accounts.all()] == [("Default", False)]
    assert holdings(copy) == holdings(legacy)
    assert portfolio_valuation_get(portfolio=copy).total_value == portfolio_valuation_get(portfolio=legacy).total_value

    # and into a portfolio whose default account tracks cash and holds transactions, it is refused, naming the
    # column, and nothing changes
    busy_id = api.post("/api/portfolios/", {"name": "Busy"}, format="json").json()["id"]
    deposit = {"type": "DEPOSIT", "date": "2024-01-02", "price": "50", "currency": "USD"}
    assert api.post(f"/api/portfolios/{busy_id}/transactions/", deposit, format="json").status_code == 201
    refused = api.post(f"/api/portfolios/{busy_id}/transactions/import/", text.encode(), content_type="text/csv")
    assert refused.status_code == 400
    assert refused.json() == {"errors": [{"row": 2, "column": "account_tracks_cash", "message": (
        "The file says 'Default' does not track cash, but it tracks cash and holds transactions: change the "
        "account's cash tracking first, or leave this column empty.")}]}
    assert Transaction.objects.filter(portfolio_id=busy_id).count() == 1
    assert Account.objects.get(portfolio_id=busy_id).tracks_cash is True

    # and a deposit added to the export naming no account (the default one, the rows' account) is an error of its
    # row once the file has the default account not track cash, and nothing is written
    fresh_id = api.post("/api/portfolios/", {"name": "Fresh"}, format="json").json()["id"]
    added = text + "2024-03-05,DEPOSIT,,1,100,0,USD,,,,,,\n"
    refused = api.post(f"/api/portfolios/{fresh_id}/transactions/import/", added.encode(), content_type="text/csv")
    assert refused.status_code == 400
    assert [(e["row"], e["column"]) for e in refused.json()["errors"]] == [(4, "account")]
    assert not Transaction.objects.filter(portfolio_id=fresh_id).exists()
    assert Account.objects.get(portfolio_id=fresh_id).tracks_cash is True


def test_rows_saying_two_things_of_an_account_or_no_yes_or_no_are_errors_naming_them(api):
    portfolio_id = api.post("/api/portfolios/", {"name": "Main"}, format="json").json()["id"]
    text = ("date,type,symbol,quantity,price,fee,currency,account,account_tracks_cash\n"
            "2024-01-02,BUY,AAA,1,10,0,USD,Broker,no\n"
            "2024-01-03,BUY,AAA,1,10,0,USD,Broker,yes\n"
            "2024-01-04,BUY,AAA,1,10,0,USD,Bank,maybe\n")
    response = api.post(f"/api/portfolios/{portfolio_id}/transactions/import/", text.encode(), content_type="text/csv")
    assert response.status_code == 400
    assert response.json() == {"errors": [
        {"row": 3, "column": "account_tracks_cash", "message": "Row 2 says the account 'Broker' does not track cash."},
        {"row": 4, "column": "account_tracks_cash", "message": "'maybe' is not yes or no."}]}
    assert [a["name"] for a in api.get(f"/api/portfolios/{portfolio_id}/accounts/").json()] == ["Default"]


def test_an_export_format_other_than_csv_or_json_is_a_400_naming_it(api, portfolio):
    response = api.get(f"/api/portfolios/{portfolio.pk}/transactions/export/?format=xml")
    assert response.status_code == 400 and response.json() == {"format": ["'xml' is not csv or json."]}
    assert api.get(f"/api/portfolios/{portfolio.pk}/transactions/export/?format=JSON").json()["transactions"] == []
