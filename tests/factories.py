"""factory_boy factories for the domain models."""

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from portfolio.models import Account, Portfolio, Transaction, TransactionType
from prices.models import AssetClass, Instrument, PriceHistory, Provider, VerificationStatus
from prices.services import PricePoint, prices_upsert


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct-horse-battery")


class InstrumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Instrument
        django_get_or_create = ["symbol", "owner"]

    symbol = factory.Sequence(lambda n: f"SYM{n}")
    name = factory.LazyAttribute(lambda o: f"{o.symbol} Inc.")
    asset_class = AssetClass.STOCK
    currency = "USD"
    provider = Provider.SIMULATED
    verification_status = VerificationStatus.VERIFIED
    owner = None  # shared; a user's own manual instrument: owner=user, provider=Provider.MANUAL


class PortfolioFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Portfolio
        skip_postgeneration_save = True

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Portfolio {n}")
    base_currency = "USD"

    @factory.post_generation
    def default_account(portfolio, create, extracted, **kwargs):
        """Every portfolio has its default account. The factories write rows directly, as a portfolio recorded
        before accounts existed was: its default account does not track cash (the migration's)."""
        if create:
            Account.objects.get_or_create(portfolio=portfolio, name="Default",
                                          defaults={"currency": portfolio.base_currency, "tracks_cash": False})


def default_account_of(portfolio: Portfolio) -> Account | None:
    return Account.objects.filter(portfolio=portfolio).order_by("id").first()


class TransactionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Transaction

    portfolio = factory.SubFactory(PortfolioFactory)
    account = factory.LazyAttribute(lambda tx: default_account_of(tx.portfolio))
    instrument = factory.SubFactory(InstrumentFactory)
    type = TransactionType.BUY
    date = date(2024, 1, 2)
    quantity = Decimal("10")
    price = Decimal("100")
    fee = Decimal("0")
    currency = "USD"


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PriceHistory

    instrument = factory.SubFactory(InstrumentFactory)
    date = date(2024, 1, 2)
    close = Decimal("100")
    source = Provider.SIMULATED


def closes_upsert(instrument: Instrument, closes: dict[date, str], *, source: str = "yahoo") -> None:
    """Closes written as a refresh writes them (prices_upsert: its locks, its upsert), a string each."""
    prices_upsert(instrument=instrument, points=[PricePoint(day, Decimal(close)) for day, close in closes.items()],
                  source=source)
