"""What history the portfolios need, told to prices (registered in apps.py): closes of every traded instrument from
its first trade (and at least its sparkline's months), of every benchmark from a week before its portfolio's first
trade (the close it is compared from), and FX rates of every foreign currency from its first use."""

from collections.abc import Iterable
from datetime import date, timedelta

from django.db.models import Min
from django.utils import timezone

from portfolio.models import Portfolio, Transaction
from portfolio.ranges import BENCHMARK_LEAD_DAYS, SPARKLINE_MONTHS, months_before
from prices.fx import currency_major


def closes_needed_from(first_trade: date) -> date:
    """Where an instrument traded from `first_trade` on needs its closes from: that day, or the start of its
    sparkline's window when later (a holding bought last week draws its last 3 months, as any other)."""
    return min(first_trade, months_before(timezone.localdate(), SPARKLINE_MONTHS))


def benchmark_needed_from(first_trade: date) -> date:
    """Where a benchmark of a portfolio whose first trade is `first_trade` needs its closes from: its last close
    before that day is what it is compared from."""
    return first_trade - timedelta(days=BENCHMARK_LEAD_DAYS)


def instrument_history_needs(instrument_ids: Iterable[int] | None = None) -> dict[int, date]:
    """Instrument id -> where its closes are needed from: its first trade in any portfolio (closes_needed_from), or
    a week before the first trade of a portfolio comparing itself with it (a benchmark). None: every instrument."""
    trades = Transaction.objects.filter(instrument__isnull=False)  # cash transactions name none
    benchmarks = Portfolio.objects.filter(benchmark__isnull=False)
    if instrument_ids is not None:
        ids = list(instrument_ids)
        trades, benchmarks = trades.filter(instrument_id__in=ids), benchmarks.filter(benchmark_id__in=ids)
    rows = [(instrument_id, closes_needed_from(first)) for instrument_id, first in
            trades.values("instrument_id").annotate(first=Min("date")).values_list("instrument_id", "first")]
    rows += [(instrument_id, benchmark_needed_from(first)) for instrument_id, first in
             benchmarks.annotate(first=Min("transactions__date")).values_list("benchmark_id", "first")
             if first is not None]
    needs: dict[int, date] = {}
    for instrument_id, first in rows:
        needs[instrument_id] = min(first, needs.get(instrument_id, first))
    return needs


def fx_history_needs() -> dict[str, dict[str, date]]:
    """Base currency -> {foreign major currency: the first trade that uses it}: a transaction's own
    currency or its instrument's, in a portfolio based in another one."""
    rows = (
        Transaction.objects.values("portfolio__base_currency", "currency", "instrument__currency")
        .annotate(first=Min("date"))
        .values_list("portfolio__base_currency", "currency", "instrument__currency", "first")
    )
    needs: dict[str, dict[str, date]] = {}
    for base, tx_currency, instrument_currency, first in rows:
        base_major = currency_major(base)[0]
        for code in (tx_currency, instrument_currency):
            if code is None:  # a cash transaction's instrument
                continue
            major = currency_major(code)[0]
            if major != base_major:
                known = needs.setdefault(base_major, {})
                known[major] = min(first, known.get(major, first))
    return needs


def transactions_needs(*, base: str, transactions: Iterable[Transaction]) -> tuple[dict[int, date], dict[str, date]]:
    """What these transactions (instrument selected) of a portfolio based in `base` need: closes of
    each instrument (from the earliest of them, closes_needed_from) and rates of each foreign currency, from the
    earliest of them."""
    instruments: dict[int, date] = {}
    currencies: dict[str, date] = {}
    base_major = currency_major(base)[0]
    for tx in transactions:
        if tx.instrument_id is not None:  # cash transactions name no instrument, only their currency
            needed = closes_needed_from(tx.date)
            instruments[tx.instrument_id] = min(needed, instruments.get(tx.instrument_id, needed))
        for code in (tx.currency,) if tx.instrument_id is None else (tx.currency, tx.instrument.currency):
            major = currency_major(code)[0]
            if major != base_major:
                currencies[major] = min(tx.date, currencies.get(major, tx.date))
    return instruments, currencies
