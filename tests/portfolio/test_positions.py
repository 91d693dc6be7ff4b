"""Each portfolio's value on the Portfolios page, and the user's position on an instrument's page."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from portfolio.positions import instrument_positions_get, portfolio_summaries_get
from prices.models import FxRate
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory
from tests.portfolio.test_views import web  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def test_the_portfolios_page_shows_each_portfolios_value(web, user, other_user):  # noqa: F811
    aapl = InstrumentFactory(symbol="AAPL")
    PriceFactory(instrument=aapl, date=date(2024, 3, 1), close=Decimal("150"))
    main = PortfolioFactory(owner=user, name="Main")
    side = PortfolioFactory(owner=user, name="Side", base_currency="USD")
    TransactionFactory(portfolio=main, instrument=aapl, quantity=Decimal("10"), price=Decimal("100"))
    TransactionFactory(portfolio=side, instrument=aapl, quantity=Decimal("2"), price=Decimal("120"))
    TransactionFactory(portfolio=PortfolioFactory(owner=other_user, name="Hers"), instrument=aapl)

    summaries = {row["portfolio"].name: row for row in portfolio_summaries_get(user=user)}
    assert set(summaries) == {"Main", "Side"}  # never hers
    assert (summaries["Main"]["total_value"], summaries["Main"]["unrealized_gain"]) == ("1500.00", "500.00")
    assert (summaries["Side"]["total_value"], summaries["Side"]["unrealized_gain"]) == ("300.00", "60.00")

    page = web.get("/portfolios/").content.decode()
    # raw figures, each with its format for the page's one number format (static/js/format.js)
    money = '<span data-format="money" data-currency="USD">{}</span>'
    assert money.format("1500.00") + " USD" in page and money.format("300.00") + " USD" in page
    assert "Hers" not in page
    assert money.format("500.00") + ' (<span data-format="percent">50.00</span>)' in page


def test_the_instrument_page_shows_the_users_position_per_portfolio(web, user, other_user):  # noqa: F811
    msft = InstrumentFactory(symbol="MSFT")
    PriceFactory(instrument=msft, date=date(2024, 3, 1), close=Decimal("400"))
    main = PortfolioFactory(owner=user, name="Main")
    TransactionFactory(portfolio=main, instrument=msft, quantity=Decimal("3"), price=Decimal("300"),
                       fee=Decimal("1"), date=date(2024, 1, 2))
    TransactionFactory(portfolio=main, instrument=msft, type="SELL", quantity=Decimal("1"), price=Decimal("350"),
                       date=date(2024, 2, 1))
    TransactionFactory(portfolio=PortfolioFactory(owner=other_user), instrument=msft, quantity=Decimal("99"))

    (position,) = instrument_positions_get(user=user, instrument=msft)
    assert (position["quantity"], position["cost_basis"], position["market_value"], position["unrealized_gain"]) == (
        "2", "600.67", "800.00", "199.33")

    page = web.get("/instruments/MSFT/").content.decode()
    assert 'data-testid="positions"' in page and "600.67" in page and "199.33" in page
    assert 'data-date="2024-01-02" data-type="BUY"' in page and 'data-date="2024-02-01" data-type="SELL"' in page
    section = page.split('data-testid="positions"')[1].split("</section>")[0]
    assert section.count("<tr data-portfolio=") == 1 and 'data-field="quantity">99<' not in section  # not hers


def test_no_position_section_for_an_instrument_only_watched(web, user):  # noqa: F811
    InstrumentFactory(symbol="NFLX")
    web.post("/api/watchlist/", {"symbol": "NFLX"}, content_type="application/json")
    page = web.get("/instruments/NFLX/")
    assert page.status_code == 200 and 'data-testid="positions"' not in page.content.decode()


def test_a_position_is_the_instruments_own_when_a_symbol_names_two(user):
    """The user's manual ABC and the shared ABC, both held in one portfolio: each page shows its own."""
    shared = InstrumentFactory(symbol="ABC")
    mine = InstrumentFactory(symbol="ABC", provider="manual", owner=user)
    main = PortfolioFactory(owner=user, name="Main")
    TransactionFactory(portfolio=main, instrument=mine, quantity=Decimal("7"), price=Decimal("10"))
    TransactionFactory(portfolio=main, instrument=shared, quantity=Decimal("2"), price=Decimal("50"))

    assert [p["quantity"] for p in instrument_positions_get(user=user, instrument=shared)] == ["2"]
    assert [p["quantity"] for p in instrument_positions_get(user=user, instrument=mine)] == ["7"]


def test_instrument_page_average_cost_is_labelled_in_the_portfolios_currency(user):
    # given a EUR portfolio holding a USD stock: its average cost (the dashboard row's) is in EUR
    today = timezone.localdate()
    for days in range(30):
        FxRate.objects.create(base="EUR", quote="USD", date=today - timedelta(days=days), rate=Decimal("1.25"))
    portfolio = PortfolioFactory(owner=user, base_currency="EUR")
    TransactionFactory(portfolio=portfolio, instrument=InstrumentFactory(symbol="KO"), date=today - timedelta(days=10),
                       quantity=Decimal("10"), price=Decimal("50"))  # 500 USD = 400 EUR, 40 EUR a share
    client = Client()
    client.force_login(user)

    html = client.get("/instruments/KO/").content.decode()

    positions = html[html.index('data-testid="positions"'):html.index("Your transactions")]
    (cell,) = re.findall(r'<td class="num" data-format="price" data-currency="(\w+)">([^<]*)</td>', positions)
    assert cell == ("EUR", "40.00"), cell  # observed ("USD", "40.00"): 40 EUR shown as $40.00


@pytest.mark.parametrize(("price", "shown"), [("0.0123", "0.0123"), ("0.000123", "0.000123"), ("0.00001", "0.00001000"),
                                               ("12.345", "12.34"),
                                               ("0.5", "0.5000")])
def test_an_average_cost_keeps_the_places_a_price_of_its_size_needs(user, price, shown):
    # given 1000 shares bought at a penny stock's price (no fee): its average cost is that price, not 0.01
    today = timezone.localdate()
    portfolio = PortfolioFactory(owner=user, base_currency="USD")
    stock = InstrumentFactory(symbol="PENNY")
    PriceFactory(instrument=stock, date=today - timedelta(days=3), close=Decimal(price))
    TransactionFactory(portfolio=portfolio, instrument=stock, date=today - timedelta(days=3),
                       quantity=Decimal("1000"), price=Decimal(price), fee=Decimal("0"))
    client = Client()
    client.force_login(user)

    # then the dashboard's holdings row and the instrument page both give it to the places its size needs
    row, = client.get(f"/api/dashboard-holdings-data/{portfolio.pk}/").json()["holdings"]
    assert row["average_cost"] == shown
    html = client.get("/instruments/PENNY/").content.decode()
    positions = html[html.index('data-testid="positions"'):html.index("Your transactions")]
    (cell,) = re.findall(r'<td class="num" data-format="price" data-currency="(\w+)">([^<]*)</td>', positions)
    assert cell == ("USD", shown)
