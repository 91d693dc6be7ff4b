"""Currency codes: ISO 4217 from Babel's CLDR data, plus the minor units providers quote in."""

from functools import cache

from babel.numbers import list_currencies
from django.core.exceptions import ValidationError

# London listings are quoted in pence (GBp), some Johannesburg ones in cents (ZAc).
MINOR_UNIT_CURRENCIES = {"GBp": ("GBP", 100), "GBX": ("GBP", 100), "ZAc": ("ZAR", 100), "ILA": ("ILS", 100)}


@cache
def iso_currencies() -> frozenset[str]:
    return frozenset(code for code in list_currencies() if len(code) == 3 and code.isupper())


def currency_normalize(*, code: str, field: str = "currency", allow_minor: bool = False) -> str:
    """The currency code as stored, or a ValidationError naming `field`."""
    raw = (code or "").strip()
    if allow_minor and raw in MINOR_UNIT_CURRENCIES:
        return raw
    upper = raw.upper()
    if upper in iso_currencies():
        return upper
    raise ValidationError({field: f"'{raw}' is not an ISO 4217 currency code (e.g. USD, EUR, GBP)."})


def currency_codes(major: str) -> set[str]:
    """Every code Folio may store for a major currency: GBP -> {GBP, GBp, GBX}."""
    return {major} | {code for code, (parent, _) in MINOR_UNIT_CURRENCIES.items() if parent == major}
