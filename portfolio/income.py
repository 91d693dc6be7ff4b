"""Income: dividends and interest by month and by year, over the trailing twelve months, and as yield on
cost — per holding and in total, in the portfolio's base currency. Interest is the income of a currency's
cash (its row is that cash holding's).

Each payment is converted at the FX rate of its own date (the rate on or before it, as everywhere):
what it was worth when it was paid, not at today's rate. A payment whose rate is not stored yet is left
out and counted in `fx_missing`, never converted at 1. A dividend's gross is quantity × price; its fee
is the tax withheld; net = gross − withheld. Yield on cost is trailing-twelve-month gross income over
the cost basis of what is held now; the portfolio's is over the securities held (cash left out: it is what
income becomes, so counting it would lower the yield with every payment received).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from core.query_cache import query_cache
from portfolio.cash import cash_currency
from portfolio.dashboard import DASHBOARD_CACHE_SECONDS
from portfolio.holdings import EXACT_SUMS, ZERO, money_format, money_sum, ratio_format
from portfolio.models import Portfolio, Transaction, TransactionType
from portfolio.ranges import months_before
from portfolio.selectors import portfolio_valuation_get
from prices.fx import FxTable
from prices.models import AssetClass, cash_symbol

# Transaction types that are income.
INCOME_TYPES = [TransactionType.DIVIDEND.value, TransactionType.INTEREST.value]


@dataclass
class Amounts:
    gross: Decimal = ZERO
    withheld: Decimal = ZERO
    payments: int = 0

    def add(self, gross: Decimal, withheld: Decimal) -> None:
        self.gross = EXACT_SUMS.add(self.gross, gross)
        self.withheld = EXACT_SUMS.add(self.withheld, withheld)
        self.payments += 1

    @property
    def net(self) -> Decimal:
        return self.gross - self.withheld

    def as_dict(self) -> dict:
        return {"gross": money_format(self.gross), "withheld": money_format(self.withheld),
                "net": money_format(self.net), "payments": self.payments}


@dataclass
class HoldingIncome:
    symbol: str
    name: str
    total: Amounts = field(default_factory=Amounts)
    ttm: Amounts = field(default_factory=Amounts)


def _months(first: date, last: date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def portfolio_income_get(*, portfolio: Portfolio, today: date | None = None) -> dict:
    """The portfolio's income (module docstring); months run without gaps from the first payment to
    this month, so a bar chart shows the months nothing was paid. Cached per data version and day."""
    return _income_compute(portfolio=portfolio, today=today or timezone.localdate())


# The answer changes with the portfolio's data (its version) and with the day (the trailing year).
@query_cache("income", ttl=DASHBOARD_CACHE_SECONDS, key=lambda *, portfolio, today: f"{portfolio.pk}:{today}",
             version=lambda *, portfolio, today: portfolio.data_version)
def _income_compute(*, portfolio: Portfolio, today: date) -> dict:
    # The trailing twelve months are the 1Y performance range's (months_before: 365 days would leave a day out
    # across a 29 February, and 1Y's dividends would differ from the trailing year's).
    ttm_start = months_before(today, 12)
    payments = list(
        Transaction.objects.filter(portfolio=portfolio, type__in=INCOME_TYPES, date__lte=today)
        .order_by("date", "id").values_list("instrument_id", "instrument__symbol", "instrument__name", "date",
                                              "quantity", "price", "fee", "currency"))
    fx = FxTable(target=portfolio.base_currency, currencies={row[-1] for row in payments})
    valuation = portfolio_valuation_get(portfolio=portfolio)
    cash_instruments = {h.instrument.currency: h.instrument for h in valuation.holdings + valuation.closed
                        if h.instrument.symbol == cash_symbol(h.instrument.currency)}
    by_month: dict[str, Amounts] = {}
    by_year: dict[str, Amounts] = {}
    per_holding: dict[int, HoldingIncome] = {}
    total, ttm = Amounts(), Amounts()
    fx_missing = 0
    for instrument_id, symbol, name, day, quantity, price, fee, currency in payments:
        rate = fx.rate(currency, day)
        if rate is None:
            fx_missing += 1
            continue
        gross, withheld = quantity * price * rate, fee * rate
        if instrument_id is None:  # interest: the income of that currency's cash
            cash = cash_instruments.get(cash_currency(currency))
            code = cash_currency(currency)
            instrument_id, symbol, name = ((cash.pk, cash.symbol, cash.name) if cash is not None
                                           else (f"cash-{code}", cash_symbol(code), f"Cash ({code})"))
        holding = per_holding.setdefault(instrument_id, HoldingIncome(symbol=symbol, name=name))
        for bucket in (by_month.setdefault(f"{day:%Y-%m}", Amounts()), by_year.setdefault(f"{day:%Y}", Amounts()),
                       holding.total, total):
            bucket.add(gross, withheld)
        if day > ttm_start:
            holding.ttm.add(gross, withheld)
            ttm.add(gross, withheld)

    costs = {h.instrument.pk: h.cost_basis for h in valuation.holdings}
    securities = [h for h in valuation.holdings if h.instrument.asset_class != AssetClass.CASH]
    securities_cost = money_sum(h.cost_basis for h in securities if h.cost_basis is not None)
    # The yield's income is of the same securities as its cost: those whose cost is known (one bought before the
    # first stored rate of its currency has none yet), or its income would be over a cost missing a part.
    securities_ids = {h.instrument.pk for h in securities if h.cost_basis is not None}
    first = min((date.fromisoformat(f"{m}-01") for m in by_month), default=None)
    months = _months(first, today) if first else []
    years = [str(year) for year in range(first.year, today.year + 1)] if first else []
    holdings = [
        {"symbol": h.symbol, "name": h.name, "held": instrument_id in costs,
         "cost_basis": None if costs.get(instrument_id) is None else money_format(costs[instrument_id]),
         "total": h.total.as_dict(), "ttm": h.ttm.as_dict(),
         "yield_on_cost": ratio_format(h.ttm.gross, costs.get(instrument_id))}
        for instrument_id, h in per_holding.items()
    ]
    holdings.sort(key=lambda row: (-Decimal(row["ttm"]["gross"]), -Decimal(row["total"]["gross"]), row["symbol"]))
    return {
        "base_currency": portfolio.base_currency,
        "as_of": today,
        "types": INCOME_TYPES,
        "total": total.as_dict(),
        "ttm": {**ttm.as_dict(), "start": ttm_start + timedelta(days=1), "end": today},
        "cost_basis": money_format(securities_cost),
        # Over the securities held now whose cost is known: the income of positions sold since would inflate it.
        "yield_on_cost": ratio_format(sum((h.ttm.gross for pk, h in per_holding.items() if pk in securities_ids), ZERO),
                                securities_cost),
        "by_month": [{"period": m, **by_month.get(m, Amounts()).as_dict()} for m in months],
        "by_year": [{"period": y, **by_year.get(y, Amounts()).as_dict()} for y in years],
        "holdings": holdings,
        "fx_missing": fx_missing,
    }
