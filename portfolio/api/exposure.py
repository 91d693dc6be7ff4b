"""`GET /api/portfolios/{id}/allocation/`: allocation by sector, country and region (portfolio/exposure.py)."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.api.views import owned_portfolio_or_404
from portfolio.exposure import portfolio_exposure_get


def _slices(name: str) -> serializers.Serializer:
    return inline_serializer(name, {
        "name": serializers.CharField(help_text='A sector, country or region; "unknown" is its own slice.'),
        "value": serializers.CharField(), "weight": serializers.CharField(allow_null=True)}, many=True)


class PortfolioAllocationApi(APIView):
    @extend_schema(responses=inline_serializer("PortfolioAllocation", {
        "base_currency": serializers.CharField(), "total_value": serializers.CharField(),
        "by_sector": _slices("AllocationSector"), "by_country": _slices("AllocationCountry"),
        "by_region": _slices("AllocationRegion"),
        "profiles_pending": serializers.ListField(child=serializers.CharField(),
                                                  help_text="Symbols whose profile the workers are fetching."),
    }))
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        return Response(portfolio_exposure_get(portfolio=portfolio))
