"""The naive baseline of the dashboard: one synchronous view that computes totals and the chart inside
the request, the way a first version of such a tracker is usually written — Django ORM, one query
per holding for its latest price, then per holding the closes of the chart's window (and its last
close before it) loaded as Decimals, the value of every day of the window summed in Python.
Bench-only (served through bench/urls.py); the product never does this.

It computes exactly what it returns and nothing more: totals, holdings and the 1Y chart (the
dashboard's default range) — no day outside the window is valued, no close outside it is read. It
gets the same answers as the product (same average-cost engine, closes carried forward, the same cash:
portfolio.cash.cash_expand's trades of the accounts that track it, cash worth 1 in its currency every day,
a holding of its own), so the comparison is between ways of computing, not between amounts of work.
That holds for what the bench gives it: a portfolio with trades, all in its base currency (it converts no
currency, and an empty portfolio's chart is one point here, none in the product). The bench checks it on
every run (bench/dashboard.py agreement_check: totals, holdings count, every point of the chart).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.http import Http404, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.html import escape

from portfolio.cash import cash_currencies, cash_expand
from portfolio.holdings import Position, position_apply, positions_compute
from portfolio.models import Account, Portfolio, Transaction
from prices.models import PriceHistory
from prices.services import cash_instruments_get_or_create

CENT = Decimal("0.01")
ONE = Decimal(1)  # the price of cash in its own currency, every day
CHART_DAYS = 366  # the dashboard's default range (1Y) is what the view returns


def naive_dashboard_compute(*, portfolio: Portfolio, today: date | None = None) -> dict:
    """Totals, holdings and the 1Y chart of `portfolio`, all computed now; `timings` says where the time went."""
    started = time.perf_counter()
    today = today or timezone.localdate()
    own = list(Transaction.objects.filter(portfolio=portfolio).select_related("instrument").order_by("date", "id"))
    # The cash the transactions move in the accounts that track it, as the trades of each currency's cash
    # instrument that the product's engine adds (portfolio/cash.py).
    accounts = [tx.account_id for tx in own]
    tracked = set(Account.objects.filter(portfolio=portfolio, tracks_cash=True).values_list("id", flat=True))
    cash = cash_instruments_get_or_create(currencies=cash_currencies(own, accounts=accounts, tracked=tracked))
    transactions = cash_expand(own, accounts=accounts, tracked=tracked,
                               cash_ids={code: i.pk for code, i in cash.items()}).transactions
    positions = positions_compute(transactions)
    instruments = {tx.instrument_id: tx.instrument for tx in own if tx.instrument_id is not None}
    instruments.update((i.pk, i) for i in cash.values())
    cash_ids = {i.pk for i in cash.values()}
    holdings = []
    total_value = total_cost = Decimal(0)
    for instrument_id, position in positions.items():
        if position.quantity <= 0:
            continue
        if instrument_id in cash_ids:  # no closes: worth 1 in its currency
            price = ONE
        else:
            latest = PriceHistory.objects.filter(instrument_id=instrument_id).order_by("-date").first()
            price = latest.close if latest else None
        value = position.quantity * price if price is not None else None
        total_cost += position.cost_basis
        total_value += value or 0
        holdings.append({"symbol": instruments[instrument_id].symbol, "quantity": str(position.quantity),
                         "price": str(price) if price is not None else None,
                         "market_value": str(value.quantize(CENT)) if value is not None else None})
    totals_done = time.perf_counter()

    # The chart: the days of the window it returns, each holding valued at its last close so far.
    first = transactions[0].date if transactions else today
    start = max(first, today - timedelta(days=CHART_DAYS - 1))
    days = [start + timedelta(days=n) for n in range((today - start).days + 1)]
    value = [Decimal(0)] * len(days)
    invested = [Decimal(0)] * len(days)
    by_instrument: dict[int, list[Transaction]] = defaultdict(list)
    for tx in transactions:
        by_instrument[tx.instrument_id].append(tx)
    for instrument_id, txs in by_instrument.items():
        if instrument_id in cash_ids:
            closes, close = {}, ONE
        else:
            closes = dict(PriceHistory.objects.filter(instrument_id=instrument_id, date__gte=start, date__lte=today)
                          .values_list("date", "close"))
            before = PriceHistory.objects.filter(instrument_id=instrument_id, date__lt=start).order_by("-date").first()
            close = before.close if before else None
        position, next_tx = Position(instrument_id=instrument_id), 0
        for index, day in enumerate(days):
            while next_tx < len(txs) and txs[next_tx].date <= day:
                position_apply(position, txs[next_tx])
                next_tx += 1
            close = closes.get(day, close)
            if close is not None:
                value[index] += position.quantity * close
            invested[index] += position.cost_basis
    series = [{"date": day.isoformat(), "value": str(v.quantize(CENT, ROUND_HALF_EVEN)),
               "invested": str(c.quantize(CENT, ROUND_HALF_EVEN))}
              for day, v, c in zip(days, value, invested, strict=True)]
    done = time.perf_counter()
    return {
        "total_value": str(total_value.quantize(CENT)),
        "total_cost": str(total_cost.quantize(CENT)),
        "holdings_count": len(holdings),
        "holdings": holdings,
        "series": series,
        "timings": {"totals_seconds": totals_done - started, "chart_seconds": done - totals_done},
    }


def _owned(request, portfolio_id: int) -> Portfolio:
    if not request.user.is_authenticated:
        from rest_framework.authtoken.models import Token

        header = request.headers.get("Authorization", "")
        token = Token.objects.select_related("user").filter(key=header.removeprefix("Token ").strip()).first()
        request.user = token.user if token else request.user
    portfolio = Portfolio.objects.filter(pk=portfolio_id, owner_id=getattr(request.user, "pk", None)).first()
    if portfolio is None:
        raise Http404("No such portfolio.")
    return portfolio


def naive_dashboard_api(request, portfolio_id: int) -> JsonResponse:
    # The timings travel along so the bench can say where the naive view spends its time.
    return JsonResponse(naive_dashboard_compute(portfolio=_owned(request, portfolio_id)))


def naive_dashboard_page(request, portfolio_id: int) -> HttpResponse:
    """The whole dashboard rendered on the server in one response: totals and an SVG chart."""
    data = naive_dashboard_compute(portfolio=_owned(request, portfolio_id))
    values = [float(p["value"]) for p in data["series"]] or [0.0]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    points = " ".join(f"{x},{300 - (v - low) / span * 300:.1f}" for x, v in enumerate(values))
    html = (
        "<!doctype html><html><head><title>naive dashboard</title></head><body>"
        f"<section id='naive-totals'>Value {escape(data['total_value'])} USD · cost {escape(data['total_cost'])}"
        f" · {data['holdings_count']} holdings</section>"
        f"<svg id='naive-chart' width='{len(values)}' height='300'><polyline fill='none' stroke='#2563eb' "
        f"points='{points}'/></svg></body></html>"
    )
    return HttpResponse(html)
