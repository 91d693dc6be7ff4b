"""The dashboard's progressive-loading endpoints: totals first, then holdings (charts: charts/api).

The hottest reads of the product: the token's user, the portfolio's owner and data version (as the process
last read them, confirmed by Redis's copy: portfolio/access.py) and the answer, from Redis in one round trip
(WarmReadApi, portfolio/api/views.py; each answer read alone, portfolio/dashboard.py), and the cached JSON
sent as it is.
"""

import json
from collections.abc import Callable
from typing import TypeVar

from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers

from core.schema_fields import money
from portfolio.access import PortfolioAccess
from portfolio.api.serializers import AccountBalanceSerializer
from portfolio.api.views import WarmReadApi, json_bytes_response
from portfolio.dashboard import dashboard_initial_get, dashboard_initial_queue, dashboard_part_get, dashboard_part_queue
from portfolio.models import Portfolio

T = TypeVar("T")


class DashboardInitialDataApi(WarmReadApi):
    def warm_queue(self, pipe, access, request):
        return dashboard_initial_queue(pipe, portfolio=access)

    @extend_schema(responses=inline_serializer("DashboardInitialData", {
        "portfolio": inline_serializer("DashboardPortfolio", {
            "id": serializers.IntegerField(), "name": serializers.CharField(),
            "base_currency": serializers.CharField()}),
        "total_value": money(), "total_cost": money(), "unrealized_gain": money(), "unrealized_gain_percent": money(),
        "realized_gain": money(), "dividends": money(), "fees": money(), "day_change": money(),
        "day_change_percent": money(), "holdings_count": serializers.IntegerField(),
        "prices_as_of": serializers.DateField(allow_null=True), "stale_count": serializers.IntegerField(),
        "unpriced_count": serializers.IntegerField(), "fx_missing_count": serializers.IntegerField(),
        "providers_failing": serializers.ListField(child=serializers.CharField()),
        "unknown_symbols": serializers.ListField(
            child=serializers.CharField(), help_text="Held symbols their provider does not know: check them."),
        "accounts": AccountBalanceSerializer(many=True),
        "history": inline_serializer("DashboardHistoryProgress", {
            "pending": serializers.ListField(child=serializers.CharField(),
                                             help_text="Symbols and currency pairs whose history is being fetched."),
            "done": serializers.IntegerField(), "total": serializers.IntegerField()}),
    }))
    def get(self, request, portfolio_id: int):
        # History progress moves without a data version change: read live (with the cached totals, in one
        # round trip), never cached with the rest, and appended as the answer's last member.
        access, found = self.warm_access(request, portfolio_id)
        if found is None:
            found = _dashboard_answer(lambda portfolio: dashboard_initial_get(portfolio=portfolio), access)
        initial, progress = found
        history = json.dumps(progress, separators=(",", ":"), ensure_ascii=False).encode()
        return json_bytes_response(initial[:-1] + b',"history":' + history + b"}")


class DashboardHoldingsDataApi(WarmReadApi):
    def warm_queue(self, pipe, access, request):
        return dashboard_part_queue(pipe, portfolio=access, part="holdings")

    @extend_schema(responses=inline_serializer("DashboardHoldingsData", {
        "holdings": serializers.ListField(child=inline_serializer("DashboardHolding", {
            "instrument_id": serializers.IntegerField(), "symbol": serializers.CharField(),
            "name": serializers.CharField(), "asset_class": serializers.CharField(),
            "currency": serializers.CharField(),
            "provider": serializers.CharField(help_text="Tells two holdings of one symbol apart (`manual` for yours)."),
            "quantity": serializers.CharField(), "average_cost": money(), "price": money(), "market_value": money(),
            "cost_basis": money(), "unrealized_gain": money(), "unrealized_gain_percent": money(),
            "day_change": money(), "weight": money(), "price_as_of": serializers.DateField(allow_null=True),
            "stale": serializers.BooleanField(), "unknown": serializers.BooleanField(),
            "fx_missing": serializers.BooleanField(),
        })),
    }))
    def get(self, request, portfolio_id: int):
        access, found = self.warm_access(request, portfolio_id)
        return json_bytes_response(found if found is not None else _dashboard_answer(
            lambda portfolio: dashboard_part_get(portfolio=portfolio, part="holdings"), access))


def _dashboard_answer(read: Callable[[PortfolioAccess], T], access: PortfolioAccess) -> T:
    try:
        return read(access)
    except Portfolio.DoesNotExist:  # deleted between the owner check and the computation
        raise Http404("No such portfolio.") from None
