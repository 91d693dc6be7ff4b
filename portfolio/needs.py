"""What history the portfolios need, told to prices (registered in apps.py): closes of every traded or
benchmark instrument from its first trade, and FX rates of every foreign currency from its first use."""

from collections.abc import Iterable
from datetime import date

from django.db.models import Min

from portfolio.models import Portfolio, Transaction
from prices.fx import currency_major


def instrument_history_needs(instrument_ids: Iterable[int] | None = None) -> dict[int, date]:
    """Instrument id -> its first trade in any portfolio, or the first trade of a portfolio comparing
    itself with it (a benchmark). None: every instrument."""
    trades = Transaction.objects.filter(instrument__isnull=False)  # cash transactions name none
    benchmarks = Portfolio.objects.filter(benchmark__isnull=False)
    if instrument_ids is not None:
        ids = list(instrument_ids)
        trades, benchmarks = trades.filter(instrument_id__in=ids), benchmarks.filter(benchmark_id__in=ids)
    rows = list(trades.values("instrument_id").annotate(first=Min("date")).values_list("instrument_id", "first"))
    rows += list(benchmarks.annotate(first=Min("transactions__date")).values_list("benchmark_id", "first"))
    needs: dict[int, date] = {}
    for instrument_id, first in rows:
        if first is not None:
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
    each instrument and rates of each foreign currency, from the earliest of them."""
    instruments: dict[int, date] = {}
    currencies: dict[str, date] = {}
    base_major = currency_major(base)[0]
    for tx in transactions:
        if tx.instrument_id is not None:  # cash transactions name no instrument, only their currency
            instruments[tx.instrument_id] = min(tx.date, instruments.get(tx.instrument_id, tx.date))
        for code in (tx.currency,) if tx.instrument_id is None else (tx.currency, tx.instrument.currency):
            major = currency_major(code)[0]
            if major != base_major:
                currencies[major] = min(tx.date, currencies.get(major, tx.date))
    return instruments, currencies
