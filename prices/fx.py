"""FX: daily rates stored like prices, and conversion between currencies on a date.

Rates are stored as fetched (1 base = rate quote). Conversion looks for the pair either way round
and uses the latest rate on or before the date (no rate on weekends and ECB holidays). Minor units
(GBp, ZAc) convert through their major currency.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from prices.currencies import MINOR_UNIT_CURRENCIES
from prices.models import FxRate


class FxRateMissing(LookupError):
    pass


def fx_rates_store(*, base: str, series: dict[date, dict[str, Decimal]], source: str = "frankfurter") -> int:
    rows = [
        FxRate(base=base, quote=quote, date=day, rate=rate, source=source)
        for day, rates in series.items()
        for quote, rate in rates.items()
        if rate is not None and rate > 0
    ]
    if not rows:
        return 0
    with transaction.atomic():
        FxRate.objects.bulk_create(rows, update_conflicts=True, unique_fields=["base", "quote", "date"],
                                   update_fields=["rate", "source", "last_updated"], batch_size=2000)
    return len(rows)


def _major(code: str) -> tuple[str, Decimal]:
    """GBp -> (GBP, 1/100): how many major units one minor unit is."""
    if code in MINOR_UNIT_CURRENCIES:
        major, per = MINOR_UNIT_CURRENCIES[code]
        return major, Decimal(1) / Decimal(per)
    return code, Decimal(1)


def fx_rate_get(*, source: str, target: str, on: date) -> Decimal:
    """How many `target` one `source` is worth on `on` (latest stored rate on or before it)."""
    source_major, source_factor = _major(source)
    target_major, target_factor = _major(target)
    factor = source_factor / target_factor
    if source_major == target_major:
        return factor
    row = (
        FxRate.objects.filter(
            Q(base=source_major, quote=target_major) | Q(base=target_major, quote=source_major), date__lte=on
        )
        .order_by("-date")
        .values_list("base", "rate")
        .first()
    )
    if row is None:
        raise FxRateMissing(f"no {source_major}/{target_major} rate on or before {on}")
    base, rate = row
    return factor * (rate if base == source_major else Decimal(1) / rate)
