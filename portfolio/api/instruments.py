"""Instrument prices, served by the portfolio API because who may read them depends on holdings: stored
closes for those with a reason to read them (holders, staff; a user's own manual instrument only for its
owner); manual prices entered by the instrument's owner or staff.

A symbol names the caller's own manual instrument if they have one, else the shared one. Anything
the caller may not read answers 404, as if it did not exist."""

from datetime import date, timedelta

from django.http import Http404
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.selectors import instrument_ids_of_user, instrument_readable_by
from prices.api.serializers import (
    InstrumentPricesSerializer,
    PricePointSerializer,
    PriceRangeQuerySerializer,
    RefreshStartedSerializer,
)
from prices.models import Instrument
from prices.refresh.jobs import prices_refresh_job_start
from prices.refresh.stale import price_stale
from prices.selectors import instrument_of_user_get, price_history_get
from prices.services import PricePoint, manual_prices_add

# Without a start, a year of closes: enough for a chart, bounded for the response.
DEFAULT_RANGE_DAYS = 365


class InstrumentChoiceQuerySerializer(serializers.Serializer):
    """`?instrument=<id>`: which of the two instruments a symbol can name (your manual `KO`, the shared `KO`)."""
    instrument = serializers.IntegerField(
        required=False, min_value=1,
        help_text="The instrument's id, when the symbol names two (your manual one and the shared one).")


class InstrumentPricesQuerySerializer(PriceRangeQuerySerializer, InstrumentChoiceQuerySerializer):
    pass


class InstrumentPricesApi(APIView):
    def _instrument(self, symbol: str, instrument_id: int | None = None) -> Instrument:
        instrument = instrument_of_user_get(user=self.request.user, symbol=symbol, instrument_id=instrument_id)
        if instrument is None or not instrument_readable_by(user=self.request.user, instrument=instrument):
            raise Http404("No such instrument.")
        return instrument

    @extend_schema(
        parameters=[InstrumentPricesQuerySerializer],
        responses=InstrumentPricesSerializer,
    )
    def get(self, request, symbol: str):
        query = InstrumentPricesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        instrument = self._instrument(symbol, query.validated_data.get("instrument"))
        end = query.validated_data.get("end") or date.today()
        # A year back, or from the first day there is (an `end` in year 1 would reach before it).
        start = query.validated_data.get("start") or max(end, date.min + timedelta(days=DEFAULT_RANGE_DAYS)) \
            - timedelta(days=DEFAULT_RANGE_DAYS)
        rows = price_history_get(instrument=instrument, start=start, end=end)
        newest = rows[-1]["date"] if rows else None
        body = {
            "symbol": instrument.symbol, "currency": instrument.currency, "provider": instrument.provider,
            "verification_status": instrument.verification_status,
            "stale": price_stale(mic=instrument.exchange_mic, price_date=newest, now=timezone.now()),
            "prices": rows,
        }
        return Response(InstrumentPricesSerializer(body).data)

    @extend_schema(parameters=[InstrumentChoiceQuerySerializer], request=PricePointSerializer(many=True),
                   responses={201: inline_serializer("ManualPricesWritten", {
                       "symbol": serializers.CharField(), "written": serializers.IntegerField()})})
    def post(self, request, symbol: str):
        query = InstrumentChoiceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        instrument = self._instrument(symbol, query.validated_data.get("instrument"))
        # Its owner prices a user's manual instrument; staff price the shared ones.
        if not (instrument.owner_id == request.user.pk or (instrument.owner_id is None and request.user.is_staff)):
            raise PermissionDenied("Only the instrument's owner or staff enter its prices.")
        body = PricePointSerializer(data=request.data, many=True)
        body.is_valid(raise_exception=True)
        points = [PricePoint(date=row["date"], close=row["close"]) for row in body.validated_data]
        written = manual_prices_add(instrument=instrument, points=points)
        return Response({"symbol": instrument.symbol, "written": written}, status=status.HTTP_201_CREATED)


class PricesRefreshApi(APIView):
    """Start a refresh of the caller's instruments (staff: all) and answer with its progress URL."""

    @extend_schema(request=None, responses={202: RefreshStartedSerializer})
    def post(self, request):
        user = request.user
        if user.is_staff:
            started = prices_refresh_job_start(owner_id=user.pk, lock_scope="all")
        else:
            started = prices_refresh_job_start(owner_id=user.pk, instrument_ids=instrument_ids_of_user(user=user),
                                               lock_scope=f"user:{user.pk}")
        body = {"job_id": started.job_id, "progress_url": reverse("api-job-detail", args=[started.job_id]),
                "already_running": started.already_running}
        return Response(RefreshStartedSerializer(body).data, status=status.HTTP_202_ACCEPTED)
