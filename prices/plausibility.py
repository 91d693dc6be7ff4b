"""Quotes too absurd to store are held back, one symbol at a time, before a fetch is stored.

A provider answering `1e30` (or 0, or a price a million times its last close) for one symbol must cost
that symbol's refresh, never its whole batch: the value is taken out of the fetch's quotes and recorded
as that symbol's failure, with its reason and an event, and every other quote of the batch is stored.
`price_rows_upsert` checks the column bounds again for every writer (defence in depth).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db.models import OuterRef, Subquery

from core.events import EventKind, EventLevel, event_record
from prices.models import Instrument, PriceHistory
from prices.providers.gateway import FetchResult
from prices.services import MAX_CLOSE, close_fits_column

# A quote more than this many times above (or below 1/this of) the last stored close is a provider's
# garbage or a unit mix-up, not a market move: even a 1-for-1,000 reverse split stays within it.
MAX_JUMP = Decimal(1000)


def _last_closes(instrument_ids: list[int]) -> dict[int, Decimal]:
    last = PriceHistory.objects.filter(instrument=OuterRef("pk")).order_by("-date").values("close")[:1]
    rows = Instrument.objects.filter(pk__in=instrument_ids).annotate(last=Subquery(last)).values_list("pk", "last")
    return {pk: close for pk, close in rows if close is not None}


def quotes_implausible_hold(*, instruments: Iterable[Instrument], result: FetchResult) -> dict[str, str]:
    """Take the quotes that cannot be prices out of `result.quotes` into `result.failures` (symbol -> reason)
    and record one event per held symbol; returns what was held. Quotes of other symbols are untouched."""
    by_symbol = {instrument.symbol: instrument for instrument in instruments}
    quoted = {symbol: quote for symbol, quote in result.quotes.items() if symbol in by_symbol}
    if not quoted:
        return {}
    held: dict[str, str] = {}
    fitting = {symbol for symbol, quote in quoted.items() if close_fits_column(quote.price)}
    for symbol in quoted.keys() - fitting:
        held[symbol] = (f"price {quoted[symbol].price} held back: not a price (a close is above 0 and below "
                        f"{MAX_CLOSE:.0e})")
    last = _last_closes([by_symbol[symbol].pk for symbol in fitting])
    for symbol in fitting:
        previous = last.get(by_symbol[symbol].pk)
        price = Decimal(str(quoted[symbol].price))
        if previous and (price > previous * MAX_JUMP or price * MAX_JUMP < previous):
            held[symbol] = (f"price {price} held back: implausible against the last stored close {previous} "
                            f"(more than {MAX_JUMP:,}× away)")
    for symbol, reason in sorted(held.items()):
        del result.quotes[symbol]
        result.failures[symbol] = reason
        event_record(kind=EventKind.PROVIDER_ERROR, level=EventLevel.WARNING, message=f"{symbol}: {reason}"[:500],
                     provider=by_symbol[symbol].provider, symbol=symbol, reason="implausible_price")
    return held
