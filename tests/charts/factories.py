"""Chart-test helpers on top of tests/factories.py: FX rates and runs of daily closes."""

from datetime import date
from decimal import Decimal

import factory

from prices.models import FxRate, Instrument
from tests.factories import PriceFactory


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
