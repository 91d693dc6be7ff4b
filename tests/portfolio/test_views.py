"""The web pages: login, dashboard, portfolios and the transactions page, through Django's client."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from portfolio.models import Portfolio, Transaction
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory
from tests.stubs.market import MarketStub

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_require_login():
    client = Client()
    for path in ["/", "/portfolios/", "/portfolios/1/transactions/"]:
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_logs_in_with_csrf(user):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"].value
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery",
                                                "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert response["Location"] == "/"
    without_token = Client(enforce_csrf_checks=True).post(
        "/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert without_token.status_code == 403


def test_new_user_sees_the_empty_state_and_can_create_a_portfolio(web, user):
    page = web.get("/")
    assert b"Welcome to Folio" in page.content
    response = web.post("/", {"name": "First", "base_currency": "EUR"})
    portfolio = Portfolio.objects.get(owner=user)
    assert (portfolio.name, portfolio.base_currency) == ("First", "EUR")
    assert response["Location"] == f"/portfolios/{portfolio.pk}/transactions/"


def test_dashboard_is_a_light_shell_that_does_no_price_work(web, portfolio, django_assert_max_num_queries):
    aapl = InstrumentFactory(symbol="AAPL")
    for n in range(30):
        TransactionFactory(portfolio=portfolio, instrument=InstrumentFactory(symbol=f"H{n}"))
    TransactionFactory(portfolio=portfolio, instrument=aapl)
    with django_assert_max_num_queries(4):  # session, user, portfolios: never transactions or prices
        page = web.get("/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f'data-portfolio="{portfolio.pk}"' in html
    assert 'data-testid="totals"' in html and 'data-testid="holdings"' in html and 'data-testid="chart"' in html
    assert "vendor/uplot/uPlot.iife.min.js" in html and "js/dashboard.js" in html
    assert "AAPL" not in html  # holdings come from the API, not the page


def test_instrument_page_shows_my_transactions_in_it(web, portfolio, foreign_portfolio):
    aapl = InstrumentFactory(symbol="AAPL", name="Apple Inc.")
    TransactionFactory(portfolio=portfolio, instrument=aapl, quantity=Decimal("3"), date=date(2024, 5, 6))
    TransactionFactory(portfolio=foreign_portfolio, instrument=aapl, quantity=Decimal("777"))
    html = web.get("/instruments/aapl/").content.decode()
    assert "Apple Inc." in html and "2024-05-06" in html
    assert "777" not in html
    assert web.get("/instruments/NOPE/").status_code == 404


def test_the_instrument_page_opened_for_one_of_two_instruments_of_a_symbol_shows_its_position(web, user, portfolio):
    # given the user's own manual KO (3 bought at 30) and the shared KO (5 bought at 20), in two portfolios
    side = PortfolioFactory(owner=user, name="Side")
    manual = InstrumentFactory(symbol="KO", owner=user, provider="manual", exchange_mic="")
    shared = InstrumentFactory(symbol="KO", exchange_mic="")
    TransactionFactory(portfolio=portfolio, instrument=manual, quantity=Decimal("3"), price=Decimal("30"),
                       date=date(2024, 5, 6))
    TransactionFactory(portfolio=side, instrument=shared, quantity=Decimal("5"), price=Decimal("20"),
                       date=date(2024, 5, 7))

    def shown(query: str) -> tuple:
        html = web.get(f"/instruments/KO/{query}").content.decode()
        return (re.findall(r'<tr data-portfolio="(\d+)">', html), re.findall(r'data-date="([\d-]+)"', html),
                re.search(r'data-prices-url="([^"]+)"', html).group(1))

    # then each page shows that instrument's position, transactions and prices, the symbol alone the manual one
    assert shown(f"?instrument={manual.pk}") == (
        [str(portfolio.pk)], ["2024-05-06"], f"/api/instruments/KO/prices/?instrument={manual.pk}")
    assert shown(f"?instrument={shared.pk}") == (
        [str(side.pk)], ["2024-05-07"], f"/api/instruments/KO/prices/?instrument={shared.pk}")
    assert shown("") == shown(f"?instrument={manual.pk}")


def test_add_edit_and_delete_a_transaction_through_the_page(web, portfolio):
    url = f"/portfolios/{portfolio.pk}/transactions/"
    response = web.post(url, {"symbol": "msft", "type": "BUY", "date": "2024-01-02", "quantity": "3",
                              "price": "300", "fee": "", "currency": "USD"})
    assert response.status_code == 302
    tx = Transaction.objects.get(portfolio=portfolio)
    assert (tx.instrument.symbol, tx.quantity, tx.fee) == ("MSFT", Decimal("3"), Decimal("0"))
    assert b"MSFT" in web.get(url).content

    edit = f"{url}{tx.pk}/edit/"
    assert b'value="MSFT"' in web.get(edit).content
    web.post(edit, {"symbol": "MSFT", "type": "BUY", "date": "2024-01-02", "quantity": "4", "price": "300",
                    "currency": "USD"})
    tx.refresh_from_db()
    assert tx.quantity == Decimal("4")

    web.post(f"{url}{tx.pk}/delete/")
    assert not Transaction.objects.filter(pk=tx.pk).exists()


def test_the_page_shows_field_errors_and_saves_nothing(web, portfolio):
    TransactionFactory(portfolio=portfolio, instrument=InstrumentFactory(symbol="AAPL"), quantity=Decimal("1"))
    response = web.post(f"/portfolios/{portfolio.pk}/transactions/", {
        "symbol": "AAPL", "type": "SELL", "date": "2024-02-01", "quantity": "2", "price": "1", "currency": "USD"})
    assert response.status_code == 200
    assert "Selling 2 on 2024-02-01 is more than the 1 held on that date." in response.content.decode()
    assert Transaction.objects.count() == 1


def test_a_price_left_empty_by_the_browser_saves_nothing(web, portfolio):
    # Chromium submits an empty value for letters typed into the number box
    response = web.post(f"/portfolios/{portfolio.pk}/transactions/", {
        "symbol": "AAPL", "type": "BUY", "date": "2024-02-01", "quantity": "2", "price": "", "currency": "USD"})
    assert response.status_code == 200
    assert "A buy or sell needs its price per share." in response.content.decode()
    assert Transaction.objects.count() == 0
    gift = web.post(f"/portfolios/{portfolio.pk}/transactions/", {
        "symbol": "AAPL", "type": "BUY", "date": "2024-02-01", "quantity": "2", "price": "0", "currency": "USD",
        "gift": "on"})
    assert gift.status_code == 302
    assert Transaction.objects.get().price == 0


def test_delete_is_post_only(web, portfolio):
    tx = TransactionFactory(portfolio=portfolio)
    assert web.get(f"/portfolios/{portfolio.pk}/transactions/{tx.pk}/delete/").status_code == 405
    assert Transaction.objects.filter(pk=tx.pk).exists()


def test_another_users_pages_are_404(web, foreign_portfolio):
    tx = TransactionFactory(portfolio=foreign_portfolio)
    base = f"/portfolios/{foreign_portfolio.pk}"
    assert web.get(f"{base}/transactions/").status_code == 404
    assert web.get(f"{base}/transactions/{tx.pk}/edit/").status_code == 404
    assert web.post(f"{base}/transactions/{tx.pk}/delete/").status_code == 404
    assert web.post(f"{base}/delete/").status_code == 404
    assert Transaction.objects.filter(pk=tx.pk).exists()
    # The dashboard ignores a foreign ?portfolio= and shows the user's own.
    assert b"Not yours" not in web.get(f"/?portfolio={foreign_portfolio.pk}").content


def test_admin_lists_every_model(db, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw-long-enough-1")
    client = Client()
    client.force_login(admin)
    for path in ["portfolio/portfolio", "portfolio/transaction", "prices/instrument", "prices/pricehistory"]:
        assert client.get(f"/admin/{path}/").status_code == 200


def test_the_dashboard_never_calls_a_provider(web, portfolio, settings):
    """Even with every price stale and a real provider configured, the page and its data endpoints
    read only the database and Redis: the refresh goes to the workers."""
    market = MarketStub()
    with market.running():
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": market.url, "api_key": None}}
        aapl = InstrumentFactory(symbol="AAPL", provider="yahoo")
        TransactionFactory(portfolio=portfolio, instrument=aapl)
        PriceFactory(instrument=aapl, date=date(2024, 3, 4), close=Decimal("150"))
        assert web.get("/").status_code == 200
        initial = web.get(f"/api/dashboard-initial-data/{portfolio.pk}/").json()
        holdings = web.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()
        chart = web.get(f"/api/dashboard-chart-data/{portfolio.pk}/")
        assert initial["stale_count"] == 1 and holdings["holdings"][0]["stale"] is True
        assert chart.status_code == 202
        assert market.quote_requests == [] and market.chart_requests == []


@pytest.mark.parametrize("job", ["abc", "ABCDEF0123456789ABCDEF0123456789", "0123456789abcdef0123456789abcdef:errors"])
def test_the_import_page_given_what_is_no_job_id_shows_the_form_not_an_error(web, portfolio, job):
    # a mistyped or upper-cased ?job= link: no job to follow (a job's id is 32 lower-case hex digits)
    web.raise_request_exception = False
    response = web.get(f"/portfolios/{portfolio.pk}/transactions/import/?job={job}")
    assert response.status_code == 200
    assert 'data-testid="import-job"' not in response.content.decode()
    followed = web.get(f"/portfolios/{portfolio.pk}/transactions/import/?job={'ab' * 16}").content.decode()
    assert f'data-progress-url="/api/jobs/{"ab" * 16}/"' in followed
