"""FX: daily rates stored like prices, and conversion between currencies on a date.

Rates are stored as fetched (1 base = rate quote). Conversion looks for the pair either way round
and uses the latest rate on or before the date (no rate on weekends and ECB holidays). Minor units
(GBp, ZAc) convert through their major currency.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, Max, Q, Value, When
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from core.events import EventKind, EventLevel, event_record_once
from core.redis_store import redis_client, redis_key
from core.soft import soft_fail
from prices.currencies import MINOR_UNIT_CURRENCIES
from prices.models import FxRate
from prices.needs import fx_needs_get
from prices.providers.base import PermanentError, TransientError
from prices.providers.frankfurter import FrankfurterClient
from prices.signals import fx_rates_changed, fx_rates_writing


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
        fx_rates_writing.send(sender=FxRate, since=min(row.date for row in rows))
        FxRate.objects.bulk_create(rows, update_conflicts=True, unique_fields=["base", "quote", "date"],
                                   update_fields=["rate", "source", "last_updated"], batch_size=2000)
        fx_rates_changed.send(sender=FxRate, currencies=sorted({base} | {row.quote for row in rows}))
    return len(rows)


def currency_major(code: str) -> tuple[str, Decimal]:
    """GBp -> (GBP, 1/100): how many major units one minor unit is."""
    if code in MINOR_UNIT_CURRENCIES:
        major, per = MINOR_UNIT_CURRENCIES[code]
        return major, Decimal(1) / Decimal(per)
    return code, Decimal(1)


def fx_rate_get(*, source: str, target: str, on: date) -> Decimal:
    """How many `target` one `source` is worth on `on` (latest stored rate on or before it)."""
    source_major, source_factor = currency_major(source)
    target_major, target_factor = currency_major(target)
    factor = source_factor / target_factor
    if source_major == target_major:
        return factor
    # Latest date first; on a date with both directions stored, the direct pair wins (as FxTable).
    row = (
        FxRate.objects.filter(
            Q(base=source_major, quote=target_major) | Q(base=target_major, quote=source_major), date__lte=on
        )
        .annotate(direct=Case(When(base=source_major, then=Value(0)), default=Value(1)))
        .order_by("-date", "direct")
        .values_list("base", "rate")
        .first()
    )
    if row is None:
        raise FxRateMissing(f"no {source_major}/{target_major} rate on or before {on}")
    base, rate = row
    return factor * (rate if base == source_major else Decimal(1) / rate)


class FxTable:
    """Rates to one target currency for many currencies and dates, loaded in one query.

    For reads that convert many amounts (a portfolio's transactions, a chart's days): look-ups are
    a bisect in memory, the latest rate on or before the date, like `fx_rate_get`.
    """

    def __init__(self, *, target: str, currencies: set[str], on: date | None = None) -> None:
        """`on`: only the rates that serve that day (the latest of each pair on or before it), for a reader
        that converts at one day's rates (today's valuation of a kept replay): a row per pair, not the years of
        rows every day of them takes; `rate` then answers for that day only."""
        self.target = target
        self.on = on
        self._factors: dict[str, Decimal] = {}
        self._series: dict[str, tuple[list[date], list[Decimal]]] = {}
        target_major, target_factor = currency_major(target)
        majors: dict[str, set[str]] = {}
        for code in currencies:
            major, factor = currency_major(code)
            self._factors[code] = factor / target_factor
            if major != target_major:
                majors.setdefault(major, set()).add(code)
        if not majors:
            return
        rows = FxRate.objects.filter(
            Q(base=target_major, quote__in=list(majors)) | Q(quote=target_major, base__in=list(majors))
        )
        if on is not None:
            rows = rows.filter(date__lte=on)
            if connection.vendor == "postgresql":  # elsewhere every row up to `on`: the same answer for `on`
                rows = rows.order_by("base", "quote", "-date").distinct("base", "quote")
        # In any order: a direct rate replaces an inverted one of its day, an inverted one never a direct one.
        rows = rows.values_list("base", "quote", "date", "rate")
        by_major: dict[str, dict[date, Decimal]] = {major: {} for major in majors}
        for base, quote, day, rate in rows:
            if base == target_major:
                by_major[quote].setdefault(day, Decimal(1) / rate)
            else:
                by_major[base][day] = rate  # a direct rate wins over an inverted one
        for major, codes in majors.items():
            days = sorted(by_major[major])
            for code in codes:
                self._series[code] = (days, [by_major[major][d] for d in days])

    def fixed_rates(self) -> dict[str, Decimal]:
        """The rate of each currency loaded whose rate is the same every day (the target's own major currency
        and its units, GBp to GBP): what `rate` answers for it on any date, without a look-up per date."""
        return {code: factor for code, factor in self._factors.items() if code not in self._series}

    def rate(self, currency: str, on: date) -> Decimal | None:
        """How many target units one `currency` is worth on `on`; None when no rate is known yet."""
        if self.on is not None and on != self.on:
            raise ValueError(f"this FxTable has the rates of {self.on} only, not of {on}")
        factor = self._factors.get(currency)
        if factor is None:
            raise KeyError(f"{currency} was not loaded into this FxTable")
        if currency not in self._series:
            return factor
        days, rates = self._series[currency]
        index = bisect_right(days, on) - 1
        return factor * rates[index] if index >= 0 else None


def _series_retrying() -> Retrying:
    return Retrying(stop=stop_after_attempt(3), wait=wait_exponential_jitter(multiplier=1, max=10),
                    retry=retry_if_exception_type(TransientError), reraise=True)


# A currency the source refused is remembered for a day: the nightly refresh asks it apart, so the others are
# asked from the day after their last rate, not each night again from its first day needed.
UNPUBLISHED_SECONDS = 86400


def _unpublished_key(base: str, quote: str) -> str:
    return redis_key("fx", "unpublished", base, quote)


def _unpublished_get(base: str, quotes: list[str]) -> set[str]:
    """Those of `quotes` the source refused against `base` within the last day (none, with Redis away)."""
    with soft_fail("FX: the currencies refused lately not read"):
        found = redis_client().mget([_unpublished_key(base, quote) for quote in quotes])
        return {quote for quote, mark in zip(quotes, found, strict=True) if mark is not None}
    return set()


def _series_published(client, base: str, quotes: list[str], start: date, end: date) -> dict:
    """The daily rates of `quotes` against `base` (one request), less those the source does not publish: it
    refuses a whole request naming one (404 for TWD, say, which a Taiwan listing's quote brings), so each is then
    asked alone, and one refused is left out, remembered for a day and named in an event, never holding back the
    others' rates."""
    fetch = _series_retrying()
    try:
        return fetch(client.series, base, quotes, start, end)
    except PermanentError as error:
        if len(quotes) == 1:
            with soft_fail("FX: a refused currency not remembered"):
                redis_client().set(_unpublished_key(base, quotes[0]), 1, ex=UNPUBLISHED_SECONDS)
            event_record_once(once_key=f"fx-unpublished:{base}:{quotes[0]}", window_seconds=UNPUBLISHED_SECONDS,
                              kind=EventKind.PROVIDER_ERROR, level=EventLevel.WARNING,
                              message=f"no {base}/{quotes[0]} rates: {error}", provider="frankfurter")
            return {}
    series: dict = {}
    for quote in quotes:
        for day, rates in _series_published(client, base, [quote], start, end).items():
            series.setdefault(day, {}).update(rates)
    return series


def fx_backfill(*, base: str, currencies: list[str], since: date, client=None, today: date | None = None) -> int:
    """Fetch and store the daily rates of `currencies` against `base` from `since` to today (one request)."""
    quotes = sorted({currency_major(c)[0] for c in currencies} - {currency_major(base)[0]})
    today = today or date.today()
    if not quotes or since > today:
        return 0
    series = _series_published(client or FrankfurterClient(), currency_major(base)[0], quotes, since, today)
    return fx_rates_store(base=currency_major(base)[0], series=series)


def fx_refresh(*, client=None, today: date | None = None) -> int:
    """Fetch the daily rates every portfolio needs (prices.needs), only from the day after the last
    one stored (or from the first date needed, for a pair with none yet)."""
    client = client or FrankfurterClient()
    today = today or date.today()
    written = 0
    for base, needed in fx_needs_get().items():
        quotes = sorted(needed)
        stored = FxRate.objects.filter(base=base, quote__in=quotes).values("quote").annotate(last=Max("date"))
        last_by_quote = {row["quote"]: row["last"] for row in stored}
        # One request for them all, from the oldest gap among the pairs (yesterday's, usually); a currency the
        # source refused lately is asked apart, never holding the others back to its first day needed.
        refused = _unpublished_get(base, quotes)
        groups = [[q for q in quotes if q not in refused], *([q] for q in sorted(refused))]
        for group in filter(None, groups):
            start = min(last_by_quote[q] + timedelta(days=1) if q in last_by_quote else needed[q] for q in group)
            if start <= today:
                written += fx_rates_store(base=base, series=_series_published(client, base, group, start, today))
    return written
