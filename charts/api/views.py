"""Chart data and performance for the dashboard: served from the Redis cache only, never computed in a request."""

import functools
import json
import logging
import re
import time
from typing import NamedTuple

from django.conf import settings
from django.http import HttpResponse
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from charts.cache import (
    chart_answer_get,
    chart_answer_queue,
    chart_answer_store,
    chart_parts_current,
    chart_parts_get,
    chart_progress_get,
)
from charts.live import LivePoint, live_valuation_get
from charts.services import chart_regeneration_ask
from core.soft import soft_fail
from portfolio.access import PortfolioAccess
from portfolio.api.views import WarmReadApi, json_bytes_response, owned_portfolio_or_404
from portfolio.dashboard import DASHBOARD_CACHE_SECONDS
from portfolio.models import Portfolio
from portfolio.ranges import CHART_RANGES, PERFORMANCE_RANGES

YEAR_RANGE = re.compile(r"^\d{4}$")  # a calendar year, e.g. 2024: present when the portfolio had activity in it

PendingSerializer = inline_serializer("ChartPending", {
    "status": serializers.CharField(), "progress_url": serializers.CharField(),
})


# The chart answer as charts.compute makes it (ChartData, Allocation, ChartWarning, SparkPoint; charts.benchmark),
# for the schema. Money is in the base currency, rounded to cents; weights and returns are fractions.
_MONEY_SLICE = {"value": serializers.CharField(), "weight": serializers.CharField()}
ChartDataSerializer = inline_serializer("ChartData", {
    "status": serializers.CharField(), "range": serializers.CharField(),
    "series": serializers.ListField(child=inline_serializer("ChartPoint", {
        "date": serializers.DateField(), "value": serializers.CharField(), "invested": serializers.CharField()})),
    "generated_at": serializers.FloatField(), "age_seconds": serializers.FloatField(),
    "outdated": serializers.BooleanField(), "progress_url": serializers.CharField(),
    "allocation": inline_serializer("ChartAllocation", {
        "total": serializers.CharField(),
        "by_instrument": serializers.ListField(
            help_text="By value, then symbol, then instrument id.",
            child=inline_serializer("ChartAllocationInstrument", {
                "instrument_id": serializers.IntegerField(
                    help_text="Its holding's instrument_id: a symbol can name two held instruments (your manual "
                              "one and the shared one)."),
                "symbol": serializers.CharField(), "name": serializers.CharField(allow_blank=True),
                "asset_class": serializers.CharField(), "currency": serializers.CharField(),
                "provider": serializers.CharField(help_text="Its price provider: `manual` for one you price."),
                **_MONEY_SLICE})),
        "by_asset_class": serializers.ListField(child=inline_serializer("ChartAllocationAssetClass", {
            "asset_class": serializers.CharField(), **_MONEY_SLICE})),
        "by_currency": serializers.ListField(child=inline_serializer("ChartAllocationCurrency", {
            "currency": serializers.CharField(), **_MONEY_SLICE})),
    }),
    "sparklines": serializers.DictField(
        required=False,
        help_text="Only with include=sparklines: per held instrument, keyed by its instrument_id, its closes of the "
                  "last 3 months in its own currency.",
        child=serializers.ListField(child=inline_serializer("ChartSparkPoint", {
            "date": serializers.DateField(), "close": serializers.CharField()}))),
    "warnings": serializers.ListField(child=inline_serializer("ChartWarning", {
        "code": serializers.CharField(help_text="fx_missing_value, fx_missing_invested or no_price."),
        "instrument_id": serializers.IntegerField(help_text="The instrument it is about (a symbol can name two)."),
        "symbol": serializers.CharField(),
        "message": serializers.CharField(),
        "currency": serializers.CharField(required=False), "start": serializers.DateField(required=False),
        "end": serializers.DateField(required=False), "days": serializers.IntegerField(required=False),
    })),
    "benchmark": inline_serializer("ChartBenchmark", allow_null=True, fields={
        "symbol": serializers.CharField(),
        "series": serializers.ListField(child=inline_serializer("ChartBenchmarkPoint", {
            "date": serializers.DateField(), "portfolio": serializers.CharField(allow_null=True),
            "benchmark": serializers.CharField(allow_null=True)})),
    }),
})


class _Cached(NamedTuple):
    parts: dict[str, bytes | None]  # raw JSON of the parts asked for
    generated_at: float
    current: bool  # computed for the portfolio's present history version, today
    progress_url: str
    live: LivePoint | None  # today's point at the current valuation (None unless the chart is current)


def _cached_or_pending(*, portfolio: Portfolio | PortfolioAccess, parts: list[str]) -> _Cached | Response:
    """The requested parts of the portfolio's cached chart data, or the 202 that says it is being made.

    The cached data is the history through the last completed session (keyed by the history version and
    the day it was made for); today's point comes from the dashboard's current valuation (charts.live).
    Anything but current data asks for a regeneration (charts.services.chart_regeneration_ask: none while
    one is making it, so polling is harmless): an outdated chart is still the best there is and is served,
    marked, meanwhile, and regenerated debounced; with none at all the generation is queued at once. Data
    cached by an older Folio without the first part asked for counts as none.
    """
    progress_url = _progress_url(portfolio.pk)
    try:
        found = chart_parts_get(portfolio_id=portfolio.pk, names=["version", "generated_at", "as_of", "live", *parts],
                                read=True)
    except (RedisConnectionError, RedisTimeoutError):
        # Charts live only in Redis: while it is unreachable there is none to serve yet — the page
        # shows the rest (read from Postgres) and keeps polling.
        return Response({"status": "pending", "progress_url": progress_url}, status=status.HTTP_202_ACCEPTED)
    ready = found["version"] is not None and found[parts[0]] is not None
    current = ready and chart_parts_current(found, version=portfolio.history_version, day=timezone.localdate())
    if not current:
        chart_regeneration_ask(portfolio_id=portfolio.pk, history_version=portfolio.history_version, served=ready)
    if not ready:
        return Response({"status": "pending", "progress_url": progress_url}, status=status.HTTP_202_ACCEPTED)
    live = LivePoint.of(base=found["live"], live=live_valuation_get(portfolio=portfolio)) if current else None
    return _Cached(parts={name: found[name] for name in parts}, generated_at=float(found["generated_at"]),
                   current=current, progress_url=progress_url, live=live)


def _raw_tail(raw: dict[str, bytes | None]) -> bytes:
    """The members of `raw` parts sent as cached, without decoding them, and the closing brace."""
    return b"".join(b',"' + name.encode() + b'":' + (value if value is not None else b"null")
                    for name, value in raw.items()) + b"}"


def _raw_json(fields: dict[str, object], tail: bytes) -> HttpResponse:
    """A JSON object of small `fields` followed by a `_raw_tail`."""
    return json_bytes_response(json.dumps(fields).encode()[:-1] + tail)


def _chart_fields(*, chart_range: str, generated_at: float, current: bool, progress_url: str) -> dict:
    return {"status": "ready", "range": chart_range, "generated_at": generated_at,
            "age_seconds": round(time.time() - generated_at, 1), "outdated": not current,
            "progress_url": progress_url}


class ChartProgressSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["PENDING", "PROGRESS", "SUCCESS", "FAILURE"])
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.FloatField()
    error = serializers.CharField(allow_null=True)


def _progress_url(portfolio_id: int) -> str:
    return _progress_url_of(get_urlconf() or settings.ROOT_URLCONF, get_script_prefix(), portfolio_id)


# reverse() costs about as much as the rest of a warm chart answer's own work, and its result changes only with
# the URL configuration and the script prefix it is made under.
@functools.lru_cache(maxsize=4096)
def _progress_url_of(urlconf, prefix: str, portfolio_id: int) -> str:
    return reverse("api-chart-progress", urlconf=urlconf, args=[portfolio_id])


def _answer_key(request, portfolio: PortfolioAccess) -> tuple[str, bool, dict]:
    """The range and sparklines asked for, and the key of their cached answer (a range not offered: 400)."""
    chart_range = request.query_params.get("range", "1Y").upper()
    if chart_range not in CHART_RANGES:
        raise serializers.ValidationError({"range": f"Must be one of {', '.join(CHART_RANGES)}."})
    include_sparklines = request.query_params.get("include") == "sparklines"
    return chart_range, include_sparklines, {
        "portfolio_id": portfolio.pk, "history_version": portfolio.history_version,
        "data_version": portfolio.data_version, "day": timezone.localdate(),
        "variant": f"{chart_range}:{'sparklines' if include_sparklines else ''}"}


class ChartDataApi(WarmReadApi):
    def warm_queue(self, pipe, access, request):
        try:
            asked = _answer_key(request, access)
        except serializers.ValidationError:  # a range not offered: 400 from get, once authenticated
            return None
        answer = chart_answer_queue(pipe, **asked[2])
        return lambda replies: (asked, answer(replies))

    @extend_schema(
        parameters=[
            OpenApiParameter("range", str, enum=list(CHART_RANGES), default="1Y"),
            OpenApiParameter("include", str, enum=["sparklines"], required=False,
                             description="`sparklines`: the answer carries `sparklines` too."),
        ],
        responses={200: ChartDataSerializer, 202: PendingSerializer},
    )
    def get(self, request, portfolio_id: int):
        portfolio, read = self.warm_access(request, portfolio_id)
        if read is None:  # not read with the token (a session, Redis unreachable then): read now
            asked, answer = _answer_key(request, portfolio), None
            with soft_fail("chart answer not read from its cache", level=logging.DEBUG):  # Redis down: made below
                answer = chart_answer_get(**asked[2])
        else:
            asked, answer = read
        chart_range, include_sparklines, answer_key = asked
        if answer is not None:
            generated_at, tail = answer
            return _raw_json(_chart_fields(chart_range=chart_range, generated_at=generated_at, current=True,
                                           progress_url=_progress_url(portfolio.pk)), tail)
        parts = [f"range:{chart_range}", "allocation", "warnings", "benchmark_symbol", f"benchmark:{chart_range}"]
        cached = _cached_or_pending(portfolio=portfolio, parts=parts + (["sparklines"] if include_sparklines else []))
        if isinstance(cached, Response):
            return cached
        raw = cached.parts
        symbol = raw.pop("benchmark_symbol")
        benchmark = raw.pop(f"benchmark:{chart_range}")
        if cached.live is not None:
            raw[f"range:{chart_range}"] = cached.live.series(raw[f"range:{chart_range}"])
            raw["allocation"] = cached.live.allocation()
            raw["warnings"] = cached.live.warnings(raw["warnings"])
            benchmark = cached.live.benchmark(chart_range, benchmark, close=cached.live.benchmark_close())
            if include_sparklines:
                raw["sparklines"] = cached.live.sparklines(raw["sparklines"])
        # Time-weighted return of the portfolio against its benchmark since the range's start.
        bench = (b'{"symbol":' + symbol + b',"series":' + (benchmark or b"[]") + b"}") if symbol else None
        tail = _raw_tail({"series": raw.pop(f"range:{chart_range}"), **raw, "benchmark": bench})
        # Everything in a current chart's answer moves with the history or the data version, but a benchmark's
        # close of today (not held: its quotes move no version of the portfolio), so one without is kept as
        # sent for the dashboard's TTL.
        if cached.current and not symbol:
            with soft_fail("chart answer not cached", level=logging.DEBUG):
                chart_answer_store(**answer_key, generated_at=cached.generated_at, tail=tail,
                                   ttl=DASHBOARD_CACHE_SECONDS)
        return _raw_json(_chart_fields(chart_range=chart_range, generated_at=cached.generated_at,
                                       current=cached.current, progress_url=cached.progress_url), tail)


class ChartProgressApi(APIView):
    @extend_schema(responses=ChartProgressSerializer)
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        try:
            progress = chart_progress_get(portfolio_id=portfolio.pk)
        except (RedisConnectionError, RedisTimeoutError):
            progress = {"state": "PENDING", "done": 0, "total": 0, "percent": 0.0,
                        "error": "The chart store cannot be reached right now."}
            return Response(ChartProgressSerializer(progress).data)
        if progress is None:
            ready = chart_parts_get(portfolio_id=portfolio.pk, names=["version"])["version"] is not None
            progress = {"state": "SUCCESS" if ready else "PENDING", "done": 0, "total": 0,
                        "percent": 100.0 if ready else 0.0, "error": None}
        return Response(ChartProgressSerializer(progress).data)


# The figures of one range (charts.performance.RangePerformance; definitions in docs/holdings.md).
PERFORMANCE_MONEY = ("value", "value_start", "total_investment", "time_weighted_invested_capital",
                     "gross_performance", "net_performance", "dividends", "fees", "realized_gain", "unrealized_gain")
PERFORMANCE_RATES = ("gross_performance_percent", "net_performance_percent", "time_weighted_return",
                     "time_weighted_return_without_fx", "money_weighted_return", "money_weighted_return_period")


class PerformanceApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter(
            "range", str, default="MAX",
            description=f"One of {', '.join(PERFORMANCE_RANGES)}, or a calendar year with activity (e.g. 2024).",
        )],
        responses={
            200: inline_serializer("Performance", {
                "status": serializers.CharField(), "range": serializers.CharField(),
                "base_currency": serializers.CharField(),
                "start": serializers.DateField(allow_null=True), "end": serializers.DateField(allow_null=True),
                # Money in the base currency, rounded to cents; rates are fractions (0.123456 = 12.3456 %).
                **{name: serializers.DecimalField(max_digits=24, decimal_places=2) for name in PERFORMANCE_MONEY},
                **{name: serializers.DecimalField(max_digits=30, decimal_places=6, allow_null=True)
                   for name in PERFORMANCE_RATES},
                "investment_by_month": serializers.ListField(child=serializers.DictField()),
                "investment_by_year": serializers.ListField(child=serializers.DictField()),
                "years": serializers.ListField(child=serializers.CharField()),
                "generated_at": serializers.FloatField(), "age_seconds": serializers.FloatField(),
                "outdated": serializers.BooleanField(), "progress_url": serializers.CharField(),
                "warnings": serializers.ListField(child=serializers.DictField()),
            }),
            202: PendingSerializer,
        },
    )
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        key = request.query_params.get("range", "MAX").upper()
        if key not in PERFORMANCE_RANGES and not YEAR_RANGE.match(key):
            raise serializers.ValidationError(
                {"range": f"Must be one of {', '.join(PERFORMANCE_RANGES)} or a calendar year (e.g. 2024)."})
        cached = _cached_or_pending(portfolio=portfolio, parts=["performance", "warnings", "live_flows"])
        if isinstance(cached, Response):
            return cached
        performance = json.loads(cached.parts["performance"])
        years = [name for name in performance["ranges"] if YEAR_RANGE.match(name)]
        if key not in performance["ranges"]:
            raise serializers.ValidationError(
                {"range": f"No activity in {key}: years with activity are {', '.join(years) or 'none'}."})
        return Response({
            "status": "ready",
            "range": key,
            "base_currency": performance["base_currency"],
            **(cached.live.performance(key, performance["ranges"][key], flows=cached.parts["live_flows"])
               if cached.live is not None
               else performance["ranges"][key]),
            "investment_by_month": performance["investment_by_month"],
            "investment_by_year": performance["investment_by_year"],
            "years": years,
            "generated_at": cached.generated_at,
            "age_seconds": round(time.time() - cached.generated_at, 1),
            "outdated": not cached.current,
            "progress_url": cached.progress_url,
            # The chart's: a position left out of the value is left out of the performance too.
            "warnings": json.loads((cached.live.warnings(cached.parts["warnings"]) if cached.live is not None
                                    else cached.parts["warnings"]) or b"[]"),
        })
