"""CSV import: all rows or none, errors by row and column, duplicates skipped."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from portfolio.importing import ImportRejected, transactions_import
from portfolio.models import Account, Transaction
from portfolio.selectors import portfolio_valuation_get
from prices.models import Instrument
from prices.search_cache import search_answer_set

pytestmark = pytest.mark.django_db

GOOD = (
    "date,type,symbol,quantity,price,fee,currency,note\n"
    "2024-01-02,BUY,AAPL,10,185.64,1.00,USD,first\n"
    "2024-01-03,buy,msft,5,370.00,,USD,\n"
    "2024-02-01,SELL,AAPL,4,190.00,1.00,USD,\n"
    "2024-03-15,DIVIDEND,AAPL,6,0.24,0.36,USD,\n"
)


def errors_of(portfolio, content: str | bytes) -> list[tuple]:
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=content if isinstance(content, bytes) else content.encode())
    return [(e.row, e.column) for e in raised.value.row_errors]


def test_a_good_file_is_imported_whole(portfolio):
    result = transactions_import(portfolio=portfolio, content=GOOD.encode())
    assert (result.created, result.skipped_duplicates) == (4, 0)
    holdings = {h.instrument.symbol: h for h in portfolio_valuation_get(portfolio=portfolio).holdings}
    assert holdings["AAPL"].quantity == Decimal("6")
    assert holdings["AAPL"].cost_basis == Decimal("1857.40") * 6 / 10  # (1856.40 + 1) × 6/10
    assert holdings["MSFT"].quantity == Decimal("5")
    assert Transaction.objects.get(note="first").fee == Decimal("1.00")


def test_reimporting_the_same_file_adds_nothing(portfolio):
    transactions_import(portfolio=portfolio, content=GOOD.encode())
    again = transactions_import(portfolio=portfolio, content=GOOD.encode())
    assert (again.created, again.skipped_duplicates) == (0, 4)
    assert Transaction.objects.count() == 4


def test_bad_rows_are_all_named_and_nothing_is_written(portfolio):
    content = GOOD + (
        "2024-13-01,BUY,AAPL,1,1,0,USD,\n"  # row 6: date
        "2024-01-05,GIFT,AAPL,1,1,0,USD,\n"  # row 7: type
        "2024-01-05,BUY,AA PL,1,1,0,USD,\n"  # row 8: symbol
        "2024-01-05,BUY,AAPL,-1,1,0,USD,\n"  # row 9: quantity
        "2024-01-05,BUY,AAPL,1,abc,0,USD,\n"  # row 10: price
        "2024-01-05,BUY,AAPL,1,1,0,DOLLARS,\n"  # row 11: currency
        "2099-01-05,BUY,AAPL,1,1,0,USD,\n"  # row 12: date in the future
        "2024-01-05,BUY,AAPL,1e30,1,0,USD,\n"  # row 13: absurd quantity
    )
    assert errors_of(portfolio, content) == [
        (6, "date"), (7, "type"), (8, "symbol"), (9, "quantity"), (10, "price"), (11, "currency"), (12, "date"),
        (13, "quantity"),
    ]
    assert Transaction.objects.count() == 0
    assert not Instrument.objects.exists()


def test_an_oversell_names_its_row(portfolio):
    content = GOOD + "2024-04-01,SELL,AAPL,7,200,0,USD,\n"
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=content.encode())
    (error,) = raised.value.row_errors
    assert (error.row, error.column) == (6, "quantity")
    assert "more than the 6 held" in error.message
    assert Transaction.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"date;type;symbol\n2024-01-02;BUY;AAPL\n", "Missing column(s): quantity, price, fee, currency"),
        (b"date,type,symbol,quantity,price,fee,currency\n", "no transactions"),
        ("date,type,symbol,quantity,price,fee,currency\n2024-01-02,BUY,NESTLÉ,1,1,0,CHF\n".encode("latin-1"),
         "not UTF-8"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(portfolio, content, message):
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=content)
    assert message in raised.value.row_errors[0].message


def test_semicolons_bom_and_column_order_are_accepted(portfolio):
    content = "\ufeffSymbol;Date;Type;Currency;Quantity;Price;Fee\nVOD.L;2024-01-02;BUY;GBp;100;72.5;0\n"
    assert transactions_import(portfolio=portfolio, content=content.encode()).created == 1
    assert Transaction.objects.get().currency == "GBp"


def test_import_api_multipart_and_text_csv(api, portfolio):
    url = f"/api/portfolios/{portfolio.pk}/transactions/import/"
    response = api.post(url, {"file": SimpleUploadedFile("t.csv", GOOD.encode(), "text/csv")}, format="multipart")
    assert response.status_code == 201
    assert response.json() == {"created": 4, "skipped_duplicates": 0, "skipped_other": 0, "format": "generic"}
    raw = api.post(url, data=GOOD + "2024-05-01,BUY,NVDA,1,900,0,USD,\n", content_type="text/csv")
    assert (raw.status_code, raw.json()["created"], raw.json()["skipped_duplicates"]) == (201, 1, 4)
    bad = api.post(url, data="date,type\n", content_type="text/csv")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["row"] == 1
    assert api.post(url, {}, format="multipart").status_code == 400


def test_import_api_of_another_users_portfolio_is_404(api, foreign_portfolio):
    url = f"/api/portfolios/{foreign_portfolio.pk}/transactions/import/"
    assert api.post(url, data=GOOD, content_type="text/csv").status_code == 404
    assert Transaction.objects.count() == 0


def test_import_api_puts_rows_naming_no_account_into_the_account_chosen(api, portfolio, foreign_portfolio):
    url = f"/api/portfolios/{portfolio.pk}/transactions/import/"
    broker = Account.objects.create(portfolio=portfolio, name="Broker", currency="USD")
    theirs = Account.objects.create(portfolio=foreign_portfolio, name="Theirs", currency="USD")
    for value, message in ((theirs.pk, f"This portfolio has no account {theirs.pk}."),
                           ("abc", "'abc' is not an account id.")):
        refused = api.post(url, {"file": SimpleUploadedFile("t.csv", GOOD.encode()), "account": value},
                           format="multipart")
        assert (refused.status_code, refused.json()) == (400, {"account": [message]})
    assert Transaction.objects.count() == 0
    multipart = api.post(url, {"file": SimpleUploadedFile("t.csv", GOOD.encode()), "account": broker.pk},
                         format="multipart")
    assert multipart.status_code == 201, multipart.json()
    text = api.post(f"{url}?account={broker.pk}", data="date,type,symbol,quantity,price,fee,currency\n"
                                                         "2024-04-01,DEPOSIT,,1,500,0,USD\n", content_type="text/csv")
    assert text.status_code == 201, text.json()
    assert set(Transaction.objects.values_list("account__name", flat=True)) == {"Broker"}
    assert Transaction.objects.count() == 5


def test_import_page_lists_errors_or_imports(user, portfolio):
    web = Client()
    web.force_login(user)
    url = f"/portfolios/{portfolio.pk}/transactions/import/"
    bad = web.post(url, {"file": SimpleUploadedFile("t.csv", (GOOD + "x,BUY,A,1,1,0,USD,\n").encode())})
    assert bad.status_code == 400
    assert "Nothing was imported." in bad.content.decode() and "is not a date" in bad.content.decode()
    good = web.post(url, {"file": SimpleUploadedFile("t.csv", GOOD.encode())})
    assert good.status_code == 302
    assert Transaction.objects.count() == 4
    # the account rows naming none go into: chosen on the page, one of the portfolio's only
    broker = Account.objects.create(portfolio=portfolio, name="Broker", currency="USD")
    form = web.get(url).content.decode()
    assert f'<option value="{broker.pk}">Broker</option>' in form
    unknown = web.post(url, {"file": SimpleUploadedFile("t.csv", GOOD.encode()), "account": "999999"})
    assert unknown.status_code == 400 and "This portfolio has no account 999999." in unknown.content.decode()
    into = web.post(url, {"file": SimpleUploadedFile("t.csv", b"date,type,symbol,quantity,price,fee,currency\n"
                                                               b"2024-04-01,BUY,AAPL,1,100,0,USD\n"),
                          "account": str(broker.pk)})
    assert into.status_code == 302
    assert Transaction.objects.get(account=broker).quantity == 1


def test_a_zero_price_buy_is_imported_only_as_a_gift(portfolio):
    header = "date,type,symbol,quantity,price,fee,currency,gift\n"
    assert errors_of(portfolio, header + "2024-01-02,BUY,AAPL,10,0,0,USD,\n") == [(2, "price")]
    assert errors_of(portfolio, header + "2024-01-02,BUY,AAPL,10,,0,USD,\n") == [(2, "price")]
    assert errors_of(portfolio, header + "2024-01-02,BUY,AAPL,10,0,0,USD,maybe\n") == [(2, "gift")]
    gift = header + "2024-01-02,BUY,AAPL,10,0,0,USD,yes\n"
    result = transactions_import(portfolio=portfolio, content=gift.encode())
    assert result.created == 1
    assert Transaction.objects.get().price == 0


def test_the_rows_checked_are_reported_every_500_rows_and_at_the_end(portfolio):
    """The progress a large import's job shows (portfolio/import_jobs.py): steps on the way, not only the end."""
    header = "date,type,symbol,quantity,price,fee,currency\n"
    content = header + "".join(f"2024-01-{1 + n % 28:02d},BUY,T{n % 40:02d},1,10.25,0,USD\n" for n in range(1200))
    reported = []

    transactions_import(portfolio=portfolio, content=content.encode(),
                        progress=lambda done, total: reported.append((done, total)))

    assert reported == [(500, 1200), (1000, 1200), (1200, 1200)]
    assert Transaction.objects.filter(portfolio=portfolio).count() == 1200


def test_a_decimal_comma_is_a_row_error_never_a_thousands_separator(portfolio):
    # a European spreadsheet's "1,5 shares at 100,25": refused, naming each cell, not read as 15 at 10025
    content = "date;type;symbol;quantity;price;fee;currency\n2024-01-02;BUY;AAPL;1,5;100,25;0;USD\n"
    with pytest.raises(ImportRejected) as raised:
        transactions_import(portfolio=portfolio, content=content.encode())
    assert [(e.row, e.column, e.message) for e in raised.value.row_errors] == [
        (2, "quantity", "'1,5' is not a number: write decimals with a dot (1.5, not 1,5)."),
        (2, "price", "'100,25' is not a number: write decimals with a dot (1.5, not 1,5).")]
    assert not Transaction.objects.exists()
    # nor is an eighth of a share (0,125), nor 1,500 in a file whose cells semicolons separate (one and a half)
    for content in ("date;type;symbol;quantity;price;fee;currency\n2024-01-02;BUY;AAPL;0,125;100;0;USD\n",
                    "date;type;symbol;quantity;price;fee;currency\n2024-01-02;BUY;AAPL;1,500;100;0;USD\n",
                    'date,type,symbol,quantity,price,fee,currency\n2024-01-02,BUY,AAPL,"0,125",100,0,USD\n'):
        assert errors_of(portfolio, content) == [(2, "quantity")]
    # thousands separated by commas (quoted, in a comma-separated file) are read as written
    ok = 'date,type,symbol,quantity,price,fee,currency\n2024-01-02,BUY,AAPL,"1,000","1,234.5",0,USD\n'
    assert transactions_import(portfolio=portfolio, content=ok.encode()).created == 1
    assert (Transaction.objects.get().quantity, Transaction.objects.get().price) == (Decimal("1000"), Decimal("1234.5"))


@pytest.mark.parametrize("column", ["price", "fee"])
def test_an_amount_beyond_what_its_column_holds_is_a_row_error(portfolio, column):
    cells = {"price": "10", "fee": "0", column: "100000000000000"}  # 10^14: numeric(20, 6) holds less
    content = ("date,type,symbol,quantity,price,fee,currency\n"
               f"2024-01-02,BUY,AAPL,1,{cells['price']},{cells['fee']},USD\n")
    assert errors_of(portfolio, content) == [(2, column)]
    assert not Transaction.objects.exists()


def test_lone_carriage_returns_end_lines(portfolio):
    content = "date,type,symbol,quantity,price,fee,currency\r2024-01-02,BUY,AAPL,1,10,0,USD\r"
    assert transactions_import(portfolio=portfolio, content=content.encode()).created == 1


def test_a_symbol_its_provider_said_it_does_not_know_is_an_error_of_its_row(api, portfolio):
    # given the provider's search, asked for ZZQX, answered without it
    search_answer_set(provider="simulated", query="zzqx", hits=[])
    content = "date,type,symbol,quantity,price,fee,currency\n2024-01-02,BUY,AAPL,1,10,0,USD\n" \
              "2024-01-03,BUY,ZZQX,1,10,0,USD\n"
    response = api.post(f"/api/portfolios/{portfolio.pk}/transactions/import/", content.encode(),
                        content_type="text/csv")
    assert response.status_code == 400
    assert [(e["row"], e["column"]) for e in response.json()["errors"]] == [(3, "symbol")]
    assert not Transaction.objects.exists()


def test_a_large_file_ending_its_lines_with_lone_carriage_returns_is_queued(api, portfolio, settings):
    settings.IMPORT_SYNC_MAX_ROWS = 500
    content = "date,type,symbol,quantity,price,fee,currency\r" + "2024-01-02,BUY,AAPL,1,10,0,USD\r" * 600
    response = api.post(f"/api/portfolios/{portfolio.pk}/transactions/import/", content.encode(),
                        content_type="text/csv")
    assert response.status_code == 202 and not Transaction.objects.exists()


def test_an_error_after_a_blank_line_names_its_rows_number_in_the_file(api, portfolio):
    content = ("date,type,symbol,quantity,price,fee,currency\n"   # row 1
               "2024-01-02,BUY,AAPL,1,10,0,USD\n"                 # row 2
               "\n"                                               # row 3: blank (a spreadsheet shows it)
               "2024-01-03,BUY,AAPL,-1,10,0,USD\n")               # row 4: the bad one
    response = api.post(f"/api/portfolios/{portfolio.pk}/transactions/import/", content, content_type="text/csv")
    assert response.status_code == 400
    assert [(e["row"], e["column"]) for e in response.json()["errors"]] == [(4, "quantity")]  # was row 3


@pytest.mark.parametrize("symbol", ["BTC-USD", "bitcoin", "btc"])
def test_reimporting_a_coin_named_by_its_pair_or_id_adds_nothing(portfolio, symbol):
    # the coin is stored as BTC whichever way a file names it: a second import of the same file is all duplicates
    content = ("date,type,symbol,quantity,price,fee,currency\n"
               f"2024-01-02,BUY,{symbol},0.5,42000,0,USD\n").encode()
    assert transactions_import(portfolio=portfolio, content=content).created == 1
    again = transactions_import(portfolio=portfolio, content=content)
    assert (again.created, again.skipped_duplicates) == (0, 1)
    assert list(Transaction.objects.filter(portfolio=portfolio).values_list("instrument__symbol", flat=True)) == ["BTC"]


@pytest.mark.parametrize("separator", [",", ";", "\t"])
def test_a_file_whose_rows_leave_off_an_empty_last_column_imports_whichever_its_separator(portfolio, separator):
    # the header names the optional note; no row writes it (one separator fewer than the header)
    lines = ["date,type,symbol,quantity,price,fee,currency,note", "2024-01-02,BUY,AAPL,10,185.5,0,USD",
             "2024-01-03,BUY,MSFT,1,300,0,USD", "2024-01-04,BUY,KO,1,60,0,USD"]
    content = "".join(line.replace(",", separator) + "\n" for line in lines).encode()
    assert transactions_import(portfolio=portfolio, content=content).created == 3
    assert sorted(Transaction.objects.filter(portfolio=portfolio).values_list("instrument__symbol", "price")) == [
        ("AAPL", Decimal("185.5")), ("KO", Decimal("60")), ("MSFT", Decimal("300"))]

