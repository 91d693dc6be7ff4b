"""Reads of instruments and price history."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date
from decimal import Decimal
from functools import partial
from operator import itemgetter
from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import OuterRef, Q, Subquery

from prices.models import Instrument, LatestClose, PriceHistory
from prices.refresh.stale import price_stale
from prices.services import symbol_normalize


class LatestPrice(NamedTuple):
    """A plain tuple: a valuation makes one per instrument on every cache miss."""

    close: Decimal
    date: date
    previous_close: Decimal | None
    previous_date: date | None  # the previous close's: which splits came after it


_LATEST = LatestClose._meta.db_table


def _ids_array(ids: Iterable[int]) -> str:
    """Ids as the text of an array literal (`{1,2,3}`), sent for a `%s::bigint[]` parameter, which Postgres
    casts: psycopg dumps a list of them in Python, an element at a time (a quarter of a millisecond for 500 of
    them). Each is made an int first, so that nothing but integers is ever written into that text."""
    return f"{{{','.join(map(str, map(int, ids)))}}}"


def prices_latest_get(*, instrument_ids: Iterable[int]) -> dict[int, LatestPrice]:
    """The latest stored close (and the one before it) of each instrument, in one query.

    On Postgres one row per instrument, by primary key, of the mirror the database keeps of each one's two
    newest closes (prices.LatestClose); elsewhere three correlated subqueries per instrument, each an index
    walk down (instrument, date) — constant however long its history is.
    """
    ids = sorted(set(instrument_ids))
    if not ids:
        return {}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT instrument_id, date, close, previous_close, previous_date FROM {_LATEST} "  # ours
                           "WHERE instrument_id = ANY(%s::bigint[])", [_ids_array(ids)])
            return {pk: LatestPrice(close, as_of, previous, previous_as_of)
                    for pk, as_of, close, previous, previous_as_of in cursor.fetchall()}
    newest_first = PriceHistory.objects.filter(instrument=OuterRef("pk")).order_by("-date")
    rows = (
        Instrument.objects.filter(pk__in=ids)
        .annotate(
            last_close=Subquery(newest_first.values("close")[:1]),
            last_date=Subquery(newest_first.values("date")[:1]),
            previous_close=Subquery(newest_first.values("close")[1:2]),
            previous_date=Subquery(newest_first.values("date")[1:2]),
        )
        .values_list("pk", "last_close", "last_date", "previous_close", "previous_date")
    )
    return {
        pk: LatestPrice(close=close, date=as_of, previous_close=previous, previous_date=previous_as_of)
        for pk, close, as_of, previous, previous_as_of in rows
        if close is not None
    }


class InstrumentRow(NamedTuple):
    """An instrument as a valuation and a chart read it: the fields of Instrument they use, by the model's names.

    A plain tuple, not a model instance: every valuation reads all of its instruments on every cache miss, and
    building Instrument instances (Model.from_db, and parsing the columns nobody reads) cost a sizeable part of
    a 20-holding dashboard's miss. Nothing saves it or follows a relation from it."""

    pk: int
    symbol: str
    name: str
    asset_class: str
    currency: str
    exchange_mic: str
    provider: str
    verification_status: str
    owner_id: int | None

    @classmethod
    def of(cls, instrument: Instrument) -> InstrumentRow:
        return cls(*(getattr(instrument, name) for name in cls._fields))


_ROW_COLUMNS = [Instrument._meta.pk.column if name == "pk" else Instrument._meta.get_field(name).column
                for name in InstrumentRow._fields]
# Rows made from a tuple of their fields by tuple.__new__ (as portfolio.holdings.transaction_row_new), through
# map: a valuation makes one per instrument, on every cache miss.
_instrument_row_new = partial(tuple.__new__, InstrumentRow)
_latest_price_new = partial(tuple.__new__, LatestPrice)
_ROW_WIDTH = len(_ROW_COLUMNS)
_row_pk, _row_fields = itemgetter(0), itemgetter(slice(_ROW_WIDTH))


def instruments_by_id_get(*, ids: Collection[int], shared_symbols: Collection[str] = ()) -> dict[int, InstrumentRow]:
    """The instruments of `ids` and the shared ones (no owner) of `shared_symbols`, by id (in symbol order), in
    one query.

    Fixed SQL on a plain cursor on Postgres: a valuation reads its instruments on every cache miss, and
    building the ORM's query cost more than Postgres answering it for a portfolio of 20 holdings."""
    if connection.vendor != "postgresql":  # the ORM converts what another backend stores
        return {row[0]: InstrumentRow(*row) for row in Instrument.objects.filter(
            Q(pk__in=ids) | Q(symbol__in=shared_symbols, owner__isnull=True)).order_by("symbol", "id")
            .values_list(*InstrumentRow._fields)}
    return _instruments_query(ids, shared_symbols, latest=False)[0]


def instruments_with_latest_get(*, ids: Collection[int], shared_symbols: Collection[str] = ()
                                ) -> tuple[dict[int, InstrumentRow], dict[int, LatestPrice]]:
    """instruments_by_id_get and prices_latest_get of those instruments, in one query on Postgres (the
    instruments joined with their row of prices.LatestClose): a round trip fewer for a valuation, which needs
    both."""
    if connection.vendor != "postgresql":
        instruments = instruments_by_id_get(ids=ids, shared_symbols=shared_symbols)
        return instruments, prices_latest_get(instrument_ids=instruments)
    return _instruments_query(ids, shared_symbols, latest=True)


def _instruments_query(ids: Collection[int], shared_symbols: Collection[str], *, latest: bool
                       ) -> tuple[dict[int, InstrumentRow], dict[int, LatestPrice]]:
    """One row per instrument, its latest closes joined when `latest`. The ids and symbols go as two array
    parameters: a placeholder per id made a statement of 500 holdings too long for psycopg to cache, parsed
    and bound again on every valuation (the ids as an array literal's text: _ids_array)."""
    if not ids and not shared_symbols:
        return {}, {}
    # Our own table and column names, not input; the values are parameters.
    columns, closes = ", ".join(f"i.{column}" for column in _ROW_COLUMNS), ""
    if latest:
        columns += ", l.close, l.date, l.previous_close, l.previous_date"  # LatestPrice's fields, in its order
        closes = f" LEFT JOIN {_LATEST} l ON l.instrument_id = i.id"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {Instrument._meta.db_table} i{closes} WHERE i.id = ANY(%s::bigint[]) "
            "OR (i.owner_id IS NULL AND i.symbol = ANY(%s::text[])) ORDER BY i.symbol, i.id",
            [_ids_array(ids), list(shared_symbols)],
        )
        rows = cursor.fetchall()
    instruments = dict(zip(map(_row_pk, rows), map(_instrument_row_new, map(_row_fields, rows)), strict=True))
    if not latest:
        return instruments, {}
    # An instrument without a stored close joins a row of NULLs (close is never NULL in one that exists).
    return instruments, {row[0]: _latest_price_new(row[_ROW_WIDTH:]) for row in rows if row[_ROW_WIDTH] is not None}


def instrument_of_user_get(*, user: AbstractBaseUser, symbol: str, instrument_id: int | None = None,
                           ) -> Instrument | None:
    """The instrument a symbol names for this user: their own manual one, else the shared one; never
    another user's. None for a symbol that names neither (or is no symbol at all).

    `instrument_id` picks one of those two (a portfolio can hold both: the shared one is reachable only so);
    None if it is neither."""
    try:
        normalized = symbol_normalize(symbol=symbol)
    except ValidationError:
        return None
    owner = Q(owner=user) if user.is_authenticated else Q(pk__in=[])
    candidates = Instrument.objects.filter(owner | Q(owner__isnull=True), symbol=normalized)
    if instrument_id is not None:
        candidates = candidates.filter(pk=instrument_id)
    # Two rows at most, their own first.
    return min(candidates, key=lambda instrument: instrument.owner_id is None, default=None)


def price_history_get(*, instrument: Instrument, start: date, end: date) -> list[dict]:
    """Stored closes in a date range, oldest first (an index range scan on (instrument, date))."""
    return list(
        PriceHistory.objects.filter(instrument=instrument, date__gte=start, date__lte=end)
        .order_by("date")
        .values("date", "close", "adjusted_close", "source")
    )


def instruments_freshness_get(*, now) -> dict[str, dict[str, int]]:
    """Per provider: how many active instruments have a fresh price, a stale one, or none.

    One query (an index probe per instrument for its newest close), then the calendars.
    """
    newest = PriceHistory.objects.filter(instrument=OuterRef("pk")).order_by("-date").values("date")[:1]
    rows = (
        Instrument.objects.filter(active=True)
        .annotate(last_date=Subquery(newest))
        .values_list("provider", "exchange_mic", "last_date")
    )
    freshness: dict[str, dict[str, int]] = {}
    for provider, mic, last_date in rows:
        counts = freshness.setdefault(provider, {"fresh": 0, "stale": 0, "unpriced": 0})
        if last_date is None:
            counts["unpriced"] += 1
        elif price_stale(mic=mic, price_date=last_date, now=now):
            counts["stale"] += 1
        else:
            counts["fresh"] += 1
    return freshness
