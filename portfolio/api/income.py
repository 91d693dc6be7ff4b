"""`GET /api/portfolios/{id}/income/`: dividends (and interest) by month and year, trailing twelve months and
yield on cost, per holding and in total (portfolio/income.py)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.schema_fields import money
from portfolio.api.views import owned_portfolio_or_404
from portfolio.income import portfolio_income_get

RATIO_HELP = "A fraction (0.0345 = 3.45 %); null without a cost."


def _amounts(name: str, *, many: bool = False, **extra) -> serializers.Serializer:
    return inline_serializer(name, {"gross": money(null=False), "withheld": money(null=False), "net": money(null=False),
                                    "payments": serializers.IntegerField(), **extra}, many=many)


class PortfolioIncomeApi(APIView):
    @extend_schema(responses=inline_serializer("PortfolioIncome", {
        "base_currency": serializers.CharField(),
        "as_of": serializers.DateField(),
        "types": serializers.ListField(child=serializers.CharField(), help_text="Transaction types counted."),
        "total": _amounts("IncomeTotal"),
        "ttm": _amounts("IncomeTrailingTwelveMonths", start=serializers.DateField(), end=serializers.DateField()),
        "cost_basis": money(null=False),
        "yield_on_cost": money(help_text=RATIO_HELP),
        "by_month": _amounts("IncomeMonth", period=serializers.CharField(help_text="YYYY-MM"), many=True),
        "by_year": _amounts("IncomeYear", period=serializers.CharField(help_text="YYYY"), many=True),
        "holdings": inline_serializer("IncomeHolding", {
            "symbol": serializers.CharField(), "name": serializers.CharField(), "held": serializers.BooleanField(),
            "cost_basis": serializers.CharField(allow_null=True), "total": _amounts("IncomeHoldingTotal"),
            "ttm": _amounts("IncomeHoldingTtm"), "yield_on_cost": money(help_text=RATIO_HELP)}, many=True),
        "fx_missing": serializers.IntegerField(help_text="Payments left out: no FX rate on their date yet."),
    }))
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        return Response(portfolio_income_get(portfolio=portfolio))
