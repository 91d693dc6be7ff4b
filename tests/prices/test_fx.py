"""FX rates stored daily and conversion on a date, including pence-quoted currencies."""

from datetime import date
from decimal import Decimal as D

import pytest

from prices.fx import FxRateMissing, fx_rate_get, fx_rates_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates():
    fx_rates_store(base="USD", series={
        date(2024, 1, 2): {"EUR": D("0.9"), "GBP": D("0.8")},
        date(2024, 1, 5): {"EUR": D("0.92"), "GBP": D("0.79")},
    })


def test_direct_rate_on_and_between_business_days(rates):
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 2)) == D("0.9")
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 4)) == D("0.9")  # carried forward
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 7)) == D("0.92")


def test_inverse_rate(rates):
    assert fx_rate_get(source="EUR", target="USD", on=date(2024, 1, 5)) == D(1) / D("0.92")


def test_pence_convert_through_pounds(rates):
    assert fx_rate_get(source="GBp", target="GBP", on=date(2024, 1, 5)) == D("0.01")
    assert fx_rate_get(source="GBp", target="USD", on=date(2024, 1, 5)) == D("0.01") / D("0.79")
    assert fx_rate_get(source="USD", target="USD", on=date(1990, 1, 1)) == D(1)


def test_no_rate_before_the_first_one_is_an_error_not_a_guess(rates):
    with pytest.raises(FxRateMissing):
        fx_rate_get(source="USD", target="EUR", on=date(2023, 12, 29))
    with pytest.raises(FxRateMissing):
        fx_rate_get(source="USD", target="JPY", on=date(2024, 1, 5))


def test_storing_again_updates_in_place(rates):
    assert fx_rates_store(base="USD", series={date(2024, 1, 5): {"EUR": D("0.93"), "CHF": None}}) == 1
    assert fx_rate_get(source="USD", target="EUR", on=date(2024, 1, 5)) == D("0.93")
