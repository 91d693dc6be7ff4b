"""Chart-test helpers on top of tests/factories.py: FX rates, runs of daily closes, a small held portfolio and
the API client of its owner."""

from datetime import date, timedelta
from decimal import Decimal

import factory
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from portfolio.models import Portfolio
from prices.models import FxRate, Instrument
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory


class FxRateFactory(factory.django.DjangoModelFactory):
    """1 `base` = `rate` `quote` on `date`, as the FX refresh stores them."""

    class Meta:
        model = FxRate
        django_get_or_create = ["base", "quote", "date"]

    base = "EUR"
    quote = "USD"
    date = date(2024, 1, 2)
    rate = Decimal("1.1")


def closes_create(*, instrument: Instrument, closes: dict[date, str]) -> None:
    for day, close in closes.items():
        PriceFactory(instrument=instrument, date=day, close=Decimal(close))


def held_portfolio(owner, *, symbol: str) -> Portfolio:
    """10 shares of `symbol` bought four days ago at 100, closing at 100, 110 and (after a weekend-like gap) 120
    yesterday."""
    portfolio = PortfolioFactory(owner=owner)
    instrument = InstrumentFactory(symbol=symbol)
    today = timezone.localdate()
    TransactionFactory(portfolio=portfolio, instrument=instrument, date=today - timedelta(days=4),
                       quantity=Decimal("10"), price=Decimal("100"))
    closes_create(instrument=instrument, closes={today - timedelta(days=days_ago): close
                                                 for days_ago, close in ((4, "100"), (3, "110"), (1, "120"))})
    return portfolio


def token_client(user) -> APIClient:
    """An API client authenticated with a token of `user`'s."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
