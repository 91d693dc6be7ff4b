"""The user's position in one instrument, per portfolio holding it, and each portfolio's headline value:
read from the dashboard's cached payloads (portfolio/dashboard.py), so these pages agree with the
dashboard to the cent and cost nothing more when it was just shown."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser

from portfolio.dashboard import dashboard_payloads_get
from portfolio.models import Portfolio
from prices.models import Instrument


def portfolio_summaries_get(*, user: AbstractBaseUser) -> list[dict]:
    """Each of the user's portfolios with its value, cost, unrealized gain and day change (base currency)."""
    rows = []
    for portfolio in Portfolio.objects.filter(owner=user).order_by("name", "id"):
        initial = dashboard_payloads_get(portfolio=portfolio)["initial"]
        rows.append({"portfolio": portfolio, **{key: initial[key] for key in (
            "total_value", "total_cost", "unrealized_gain", "unrealized_gain_percent", "day_change",
            "holdings_count", "stale_count")}})
    return rows


def instrument_positions_get(*, user: AbstractBaseUser, instrument: Instrument) -> list[dict]:
    """The user's open position in `instrument` in each portfolio holding it: quantity, cost, value and
    unrealized gain in that portfolio's base currency."""
    positions = []
    holders = Portfolio.objects.filter(owner=user, transactions__instrument=instrument).distinct().order_by("name")
    for portfolio in holders:
        rows = dashboard_payloads_get(portfolio=portfolio)["holdings"]["holdings"]
        row = next((r for r in rows if r["instrument_id"] == instrument.pk), None)
        if row is not None:
            positions.append({"portfolio": portfolio, **row})
    return positions
