"""Chart data for the dashboard: served from the Redis cache only, never computed in a request."""

import time

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from charts.cache import chart_data_get, chart_progress_get
from charts.services import chart_regeneration_request
from portfolio.api.views import owned_portfolio_or_404
from portfolio.cache import portfolio_version_get

RANGES = ["1M", "3M", "6M", "YTD", "1Y", "5Y", "MAX"]


class ChartProgressSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["PENDING", "PROGRESS", "SUCCESS", "FAILURE"])
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.FloatField()
    error = serializers.CharField(allow_null=True)


class ChartDataApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("range", str, enum=RANGES, default="1Y")],
        responses={
            200: inline_serializer("ChartData", {
                "status": serializers.CharField(), "range": serializers.CharField(),
                "series": serializers.ListField(child=serializers.DictField()),
                "generated_at": serializers.FloatField(), "age_seconds": serializers.FloatField(),
                "outdated": serializers.BooleanField(),
            }),
            202: inline_serializer("ChartPending", {
                "status": serializers.CharField(), "progress_url": serializers.CharField(),
            }),
        },
    )
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        chart_range = request.query_params.get("range", "1Y").upper()
        if chart_range not in RANGES:
            raise serializers.ValidationError({"range": f"Must be one of {', '.join(RANGES)}."})
        progress_url = reverse("api-chart-progress", args=[portfolio.pk])
        data = chart_data_get(portfolio_id=portfolio.pk)
        current = data is not None and data["version"] == portfolio_version_get(portfolio_id=portfolio.pk)
        if not current:
            chart_regeneration_request(portfolio_ids=[portfolio.pk])
        if data is None:
            return Response({"status": "pending", "progress_url": progress_url}, status=status.HTTP_202_ACCEPTED)
        # An outdated chart is still the best there is: served, marked, while a new one is made.
        return Response({
            "status": "ready",
            "range": chart_range,
            "series": data["ranges"][chart_range],
            "generated_at": data["generated_at"],
            "age_seconds": round(time.time() - data["generated_at"], 1),
            "outdated": not current,
            "progress_url": progress_url,
            "sparklines": data.get("sparklines", {}),
            "allocation": data.get("allocation", {}),
            "warnings": data.get("warnings", []),
        })


class ChartProgressApi(APIView):
    @extend_schema(responses=ChartProgressSerializer)
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        progress = chart_progress_get(portfolio_id=portfolio.pk)
        if progress is None:
            ready = chart_data_get(portfolio_id=portfolio.pk) is not None
            progress = {"state": "SUCCESS" if ready else "PENDING", "done": 0, "total": 0,
                        "percent": 100.0 if ready else 0.0, "error": None}
        return Response(ChartProgressSerializer(progress).data)
