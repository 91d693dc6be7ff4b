"""The dashboard's data: totals and holdings of a portfolio, shaped for the API, cached in Redis.

Reads only the database (a constant handful of queries whatever the number of holdings) and Redis,
never a provider. The cache key carries the portfolio's data version, so any write to the portfolio
or a new price for one of its instruments invalidates it with one INCR; a short TTL keeps the
staleness flags, which move with the clock, honest.

Both answers are cached as the JSON the API sends (rendered once, on a miss, by DRF's own JSON
renderer; the holdings, the big one, written directly as the same bytes): a hit hands the bytes to the response
without decoding or encoding anything.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from json.encoder import encode_basestring
from typing import NamedTuple

from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from core.query_cache import query_cache
from portfolio.access import PortfolioAccess
from portfolio.accounts import accounts_value_rows
from portfolio.history import portfolio_history_listed_queue, portfolio_history_progress
from portfolio.holdings import ZERO, WrittenOnce, money_format, money_sum, percent_format, plain_format
from portfolio.models import Portfolio
from portfolio.selectors import Holding, Valuation, portfolio_accounts_valuation_get
from prices.models import VerificationStatus
from prices.providers.pacing import circuits_not_closed
from prices.refresh.stale import stale_refresh_request

logger = logging.getLogger(__name__)

# Staleness depends on the clock as well as the data: a minute is as stale as a flag may get.
DASHBOARD_CACHE_SECONDS = 60
# The shape of the cached answers, part of their key: bump it whenever one changes shape, so that answers
# another Folio cached (for up to DASHBOARD_CACHE_SECONDS, or while it still runs beside this one) are never
# read as this one's. 2: the live part's positions carry their instrument's id and provider, and so do the
# holdings rows (what tells two holdings of one symbol apart: your manual KO and the shared one). 3: the live part's
# positions carry their value in their instrument's currency too (what the chart's live point books as money in
# for a position its generation could not value: charts.live). 4: a holding's average cost to the places a price of
# its size needs (_price_text), and the day change of positions sold out today (no answer cached before says either).
DASHBOARD_LAYOUT = 4
CENT = Decimal("0.01")
WEIGHT_PLACES = Decimal("0.000001")
# The plain string: an enum member's look-up and comparison cost more, four times per holding.
_UNKNOWN = VerificationStatus.UNKNOWN.value


def _money(value: Decimal | None) -> str | None:
    """Rounded half-even to cents once, here, as the chart and performance figures are."""
    return None if value is None else money_format(value)


def _percent(part: Decimal | None, whole: Decimal | None) -> str | None:
    if part is None or not whole:
        return None
    percent = part / whole * _HUNDRED
    try:
        return str(percent.quantize(CENT, ROUND_HALF_EVEN))
    except InvalidOperation:
        # Beyond the caller's precision (28 digits by default: more than 26 whole ones, a gain over a near-zero
        # cost) it cannot be rounded to cents here: written in full, as percent_format writes the watchlist's
        # percentages, rather than failing the answer. (Within the precision the two differ only below zero:
        # a loss under half a cent is "-0.00" here, "0.00" there; the dashboard's answers keep theirs.)
        return percent_format(part, whole)


_HUNDRED = Decimal(100)  # the same number as 100, not converted again for every percentage


def _day_change(holding: Holding, traded_today: dict[int, tuple[Decimal, Decimal]]) -> Decimal | None:
    """The holding's move since yesterday's close, in the base currency (_moved)."""
    if holding.market_value is None:
        return None
    return _moved(quantity=holding.quantity, price=holding.price, previous_close=holding.previous_close,
                  fx_rate=holding.fx_rate, traded=traded_today.get(holding.instrument.pk))


def _closed_day_changes(valuation: Valuation) -> list[Decimal | None]:
    """The day change of each position sold out today (none held now: its shares counted to what they brought)."""
    changes = []
    for instrument_id, traded in valuation.traded_today.items():
        basis = valuation.closed_day_basis.get(instrument_id)
        if basis is not None:
            previous_close, fx_rate = basis
            changes.append(None if fx_rate is None else _moved(quantity=ZERO, price=ZERO, previous_close=previous_close,
                                                               fx_rate=fx_rate, traded=traded))
    return changes


def _moved(*, quantity: Decimal, price: Decimal, previous_close: Decimal | None, fx_rate: Decimal,
           traded: tuple[Decimal, Decimal] | None) -> Decimal | None:
    """A position's move since yesterday's close, in the base currency: the shares held yesterday from the
    previous close, those bought today from what they cost (sold today: to what they brought), so
    Q × (P − P0) + Σ today's q × (P0 − p), Q held now at P. None without a previous close, unless every share held
    now was bought today (`traded`: today's net shares and cost, Valuation.traded_today)."""
    if traded is None:
        if previous_close is None:
            return None
        return quantity * (price - previous_close) * fx_rate
    shares, cost = traded
    if previous_close is None:
        if shares != quantity:
            return None  # shares held yesterday, and no close of yesterday to count them from
        return (quantity * price - cost) * fx_rate
    return (quantity * (price - previous_close) + shares * previous_close - cost) * fx_rate


def _holdings_json(valuation: Valuation, day_changes: list[Decimal | None]) -> bytes:
    """The holdings answer, `{"holdings": [row, ...]}`, written as JSON directly: byte for byte what DRF's
    JSONRenderer writes for the same rows (compact, non-ASCII as it is, U+2028 and U+2029 escaped), without a
    dict per row nor the encoder's walk over them (500 holdings: a tenth of a cold dashboard). Each row's
    members, in order: instrument_id (the instrument itself: a symbol can name two, yours, manual, and the shared
    one), symbol, name, asset_class, currency, provider, quantity, average_cost, price, market_value, cost_basis,
    unrealized_gain, unrealized_gain_percent, day_change, weight, price_as_of, stale, unknown, fx_missing.

    The numbers are strings made here (digits, sign, point: nothing to escape); the instrument's own strings go
    through the JSON encoder's string writer."""
    text, weight_of, money, plain = _text, valuation.weight, _money_text, plain_format
    # What many holdings share (an asset class, a currency, a provider, a price date) written once per answer.
    shared, day = WrittenOnce(text), WrittenOnce(_date_text)
    rows = []
    for holding, day_change in zip(valuation.holdings, day_changes, strict=True):
        # Each property and attribute chain read once.
        instrument, cost, gain, weight = holding.instrument, holding.cost_basis, holding.unrealized_gain, \
            weight_of(holding)
        price, percent = holding.price, _percent(gain, cost)
        rows.append(
            f'{{"instrument_id":{instrument.pk:d},"symbol":{text(instrument.symbol)},"name":{text(instrument.name)},'
            f'"asset_class":{shared[instrument.asset_class]},"currency":{shared[instrument.currency]},'
            f'"provider":{shared[instrument.provider]},"quantity":"{plain(holding.quantity)}",'
            f'"average_cost":{_price_text(holding.average_cost)},'
            f'"price":{"null" if price is None else _quoted(plain(price))},'
            f'"market_value":{money(holding.market_value)},"cost_basis":{money(cost)},'
            f'"unrealized_gain":{money(gain)},'
            f'"unrealized_gain_percent":{"null" if percent is None else _quoted(percent)},'
            f'"day_change":{money(day_change)},'
            f'"weight":{"null" if weight is None else _quoted(str(weight.quantize(WEIGHT_PLACES, ROUND_HALF_EVEN)))},'
            f'"price_as_of":{day[holding.price_as_of]},'
            f'"stale":{_BOOLEAN[holding.stale]},"unknown":{_BOOLEAN[_unknown(holding)]},'
            f'"fx_missing":{_BOOLEAN[holding.fx_missing]}}}')
    return ('{"holdings":[' + ",".join(rows) + "]}").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


# A str as json.dumps writes it with ensure_ascii off (DRF's renderer: UNICODE_JSON): quotes, backslashes and
# control characters escaped, the rest as it is.
_text = encode_basestring
# The JSON literal of a flag. Only booleans are looked up: a truthy non-boolean would be a KeyError, not a
# different answer.
_BOOLEAN = {True: "true", False: "false"}


def _quoted(value: str) -> str:
    """A string of ours (a number or a date: nothing to escape) as a JSON string."""
    return f'"{value}"'


def _date_text(day: date | None) -> str:
    return f'"{day.isoformat()}"' if day else "null"


def _money_text(value: Decimal | None) -> str:
    """_money(value) as a JSON string, None as null."""
    return "null" if value is None else f'"{money_format(value)}"'


# A price per share (an average cost) keeps the places its size needs, as the pages show prices (static/js/format.js):
# cents from 1 up, 4 places under 1, 6 under 0.01, 8 under 0.0001 — a penny stock bought at 0.0123 is not 0.01.
_PRICE_PLACES = ((Decimal(1), Decimal("0.01")), (Decimal("0.01"), Decimal("0.0001")),
                 (Decimal("0.0001"), Decimal("0.000001")))


def _price_text(value: Decimal | None) -> str:
    """A price per share as a JSON string (at least 2 places, more for a small one), None as null."""
    if value is None:
        return "null"
    size = abs(value)
    places = next((quantum for floor, quantum in _PRICE_PLACES if size >= floor or not size), Decimal("1e-8"))
    return f'"{value.quantize(places, ROUND_HALF_EVEN)}"'


def _unknown(holding: Holding) -> bool:
    """Its provider said it does not know the symbol: no refresh will price it, the user must fix it."""
    return holding.instrument.verification_status == _UNKNOWN


def _providers_failing(valuation: Valuation) -> list[str]:
    """Providers of these holdings whose circuit is open: their prices cannot be refreshed now."""
    try:
        return circuits_not_closed(h.instrument.provider for h in valuation.holdings)
    except Exception:  # Redis down: say nothing rather than fail the page
        return []


def dashboard_data_compute(*, portfolio: Portfolio | PortfolioAccess, now: datetime | None = None) -> dict:
    """Both dashboard payloads (`initial`, and `holdings` as the JSON the API sends: _holdings_json) from one
    valuation. The portfolio's name, base currency and accounts are read here, with the valuation (a deleted
    portfolio raises Portfolio.DoesNotExist)."""
    portfolio, accounts, valuation = portfolio_accounts_valuation_get(portfolio_id=portfolio.pk,
                                                                      now=now or timezone.now())
    day_changes = [_day_change(h, valuation.traded_today) for h in valuation.holdings]
    known_changes = [c for c in day_changes + _closed_day_changes(valuation) if c is not None]
    day_change = money_sum(known_changes) if known_changes else None
    # The cost of the holdings whose unrealized gain is known: their value and cost are (the gain is not computed
    # only to test that).
    priced_cost = money_sum(h.cost_basis for h in valuation.holdings
                            if h.market_value is not None and h.cost_basis is not None)
    prices_as_of = valuation.prices_as_of
    stale_ids = [h.instrument.pk for h in valuation.stale_holdings if not _unknown(h)]
    initial = {
        "portfolio": {"id": portfolio.pk, "name": portfolio.name, "base_currency": portfolio.base_currency},
        "total_value": _money(valuation.total_value),
        "total_cost": _money(valuation.total_cost),
        "unrealized_gain": _money(valuation.unrealized_gain),
        "unrealized_gain_percent": _percent(valuation.unrealized_gain, priced_cost),
        "realized_gain": _money(valuation.realized_gain),
        "dividends": _money(valuation.dividends),
        "fees": _money(valuation.fees),
        "day_change": _money(day_change),
        "day_change_percent": _percent(day_change, None if day_change is None else valuation.total_value - day_change),
        "holdings_count": len(valuation.holdings),
        "prices_as_of": prices_as_of.isoformat() if prices_as_of else None,
        "stale_count": len(stale_ids),
        "unknown_symbols": sorted(h.instrument.symbol for h in valuation.holdings if _unknown(h)),
        "unpriced_count": valuation.unpriced_count,
        "fx_missing_count": valuation.fx_missing_count,
        "providers_failing": _providers_failing(valuation),
        "accounts": accounts_value_rows(accounts=accounts, valuation=valuation),
    }
    holdings = _holdings_json(valuation, day_changes)
    return {"initial": initial, "holdings": holdings, "live": _live(valuation, now=now),
            "stale_instrument_ids": stale_ids}


def _live(valuation: Valuation, *, now: datetime | None) -> dict:
    """The valuation as the chart's live point needs it (charts.live): exact, today's quotes included."""
    return {
        "date": timezone.localdate(now).isoformat(),
        "total_value": str(valuation.total_value),
        "unrealized_gain": str(valuation.unrealized_gain),
        "local": _local_values(valuation),
        # charts.compute.InstrumentInfo's fields, then the value, and the value in the instrument's currency
        "positions": [[h.instrument.pk, h.instrument.symbol, h.instrument.name, h.instrument.asset_class,
                       h.instrument.currency, h.instrument.provider, str(h.market_value), str(h.quantity * h.price)]
                      for h in valuation.holdings if h.market_value is not None],
    }


def _local_values(valuation: Valuation) -> dict[str, str]:
    """The value of the positions valued, by instrument currency, in that currency (exact)."""
    by_currency: dict[str, list[Decimal]] = {}
    for holding in valuation.holdings:
        if holding.market_value is not None:
            by_currency.setdefault(holding.instrument.currency, []).append(holding.quantity * holding.price)
    return {code: str(money_sum(values)) for code, values in by_currency.items()}


class DashboardJson(NamedTuple):
    """The two answers as the API sends them, and the valuation the chart's live point is made of."""

    initial: bytes
    holdings: bytes
    live: bytes


DASHBOARD_PARTS = ("initial", "holdings", "live")


@query_cache(
    "dashboard",
    ttl=DASHBOARD_CACHE_SECONDS,
    key=lambda *, portfolio: f"{portfolio.pk}:l{DASHBOARD_LAYOUT}",
    version=lambda *, portfolio: portfolio.data_version,
    parts=DASHBOARD_PARTS,
)
def _dashboard_json(*, portfolio: Portfolio | PortfolioAccess) -> dict[str, bytes]:
    data = dashboard_data_compute(portfolio=portfolio)
    stale_refresh_request(instrument_ids=data["stale_instrument_ids"])
    renderer = JSONRenderer()
    return {part: data[part] if isinstance(data[part], bytes) else renderer.render(data[part])
            for part in DASHBOARD_PARTS}


def dashboard_part_get(*, portfolio: Portfolio | PortfolioAccess, part: str) -> bytes:
    """One of the dashboard's answers (DASHBOARD_PARTS, or one derived: dashboard_part_derive) of the
    portfolio's current data version, read alone (cached; a miss computes and caches all of DASHBOARD_PARTS, and
    the derived part when it is the one asked for).

    Stale prices found on a miss queue one background refresh (stale-while-revalidate). A portfolio
    deleted since `portfolio` was read raises Portfolio.DoesNotExist.
    """
    return _dashboard_json.part(part, portfolio=portfolio)


def dashboard_part_derive(name: str, *, source: str, make, stats: str) -> None:
    """Add an answer made from one of DASHBOARD_PARTS (`make(bytes) -> bytes`) by a module higher up the
    stack (the chart's live point): cached with the others, made by a miss asked for it or else by its first
    reader, read with dashboard_part_get (query_cache's `derive`)."""
    _dashboard_json.derive(name, source=source, make=make, stats=stats)


def dashboard_initial_get(*, portfolio: Portfolio | PortfolioAccess) -> tuple[bytes, dict]:
    """The totals answer (as dashboard_part_get) and the history progress, read live (it moves without a
    data version change), in one Redis round trip."""
    initial, replies = _dashboard_json.part_alongside(
        "initial", lambda pipe: portfolio_history_listed_queue(pipe, portfolio_id=portfolio.pk), portfolio=portfolio)
    return initial, portfolio_history_progress(portfolio_id=portfolio.pk, listed=replies[0] if replies else None)


def dashboard_part_queue(pipe, *, portfolio: Portfolio | PortfolioAccess, part: str) -> Callable[[list], bytes | None]:
    """dashboard_part_get's read queued on `pipe` (the caller's pipeline, so another read rides in the same
    round trip) and the reader of the pipeline's replies: the answer, or None on a miss (read only: then
    dashboard_part_get computes it)."""
    return _dashboard_json.part_queue(part, pipe, portfolio=portfolio)


def dashboard_initial_queue(pipe, *, portfolio: Portfolio | PortfolioAccess,
                            ) -> Callable[[list], tuple[bytes, dict] | None]:
    """dashboard_initial_get's reads queued on `pipe`, as dashboard_part_queue: (totals, history progress), or
    None on a miss."""
    initial = dashboard_part_queue(pipe, portfolio=portfolio, part="initial")
    listed = len(pipe)
    portfolio_history_listed_queue(pipe, portfolio_id=portfolio.pk)

    def reader(replies: list) -> tuple[bytes, dict] | None:
        found = initial(replies)
        if found is None:
            return None
        return found, portfolio_history_progress(portfolio_id=portfolio.pk, listed=replies[listed])

    return reader


def dashboard_data_get(*, portfolio: Portfolio | PortfolioAccess) -> DashboardJson:
    """The dashboard answers of the portfolio's current data version, all three (see dashboard_part_get)."""
    return DashboardJson(**_dashboard_json(portfolio=portfolio))


def dashboard_payloads_get(*, portfolio: Portfolio | PortfolioAccess) -> dict:
    """The same cached answers decoded, `{"initial": {...}, "holdings": {...}}`, for pages that show
    parts of them (the Portfolios page, an instrument's positions) and must agree with the dashboard."""
    answers = dashboard_data_get(portfolio=portfolio)
    return {"initial": json.loads(answers.initial), "holdings": json.loads(answers.holdings)}
