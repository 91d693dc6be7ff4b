"""Portfolio and transaction endpoints. Thin: parse, call a service or selector, shape the answer.

Every portfolio-scoped lookup goes through `portfolio_get(user=…)` or, for the dashboard's hot reads, the
owner check of portfolio/access.py (`portfolio_access_get(user_id=…)`, or `portfolio_access_owned` on what
a token's warm read found before authentication: WarmReadApi), so another user's portfolio answers 404
on every route: it does not exist for the caller.
"""

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.text import slugify
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.authentication import TOKEN_CACHE_ALIAS, token_cache_queue
from core.redis_store import REDIS_DOWN, redis_client
from core.soft import soft_fail
from portfolio import selectors, services
from portfolio.access import (
    AccessRead,
    PortfolioAccess,
    owned_portfolio_or_404,
    portfolio_access_get,
    portfolio_access_owned,
    portfolio_access_probe,
    portfolio_access_read,
    portfolio_access_settle,
)
from portfolio.api.serializers import (
    ImportErrorsSerializer,
    ImportResultSerializer,
    PortfolioInputSerializer,
    PortfolioSerializer,
    PortfolioUpdateSerializer,
    TransactionInputSerializer,
    TransactionSerializer,
    transaction_input_merged,
)
from portfolio.exporting import COLUMNS as EXPORT_COLUMNS
from portfolio.exporting import transaction_rows, transactions_csv, user_data_export
from portfolio.import_jobs import transactions_import_or_queue
from portfolio.importing import MAX_FILE_BYTES, ImportRejected, import_account_get
from portfolio.models import Transaction

logger = logging.getLogger(__name__)


def owned_portfolio_access_or_404(request, portfolio_id: int) -> PortfolioAccess:
    """The owner and data version of the caller's portfolio (one primary-key probe in Postgres), for reads served
    from caches."""
    access = portfolio_access_get(user_id=request.user.pk, portfolio_id=portfolio_id)
    if access is None:
        raise Http404("No such portfolio.")
    return access


class _Warm(NamedTuple):
    """What the warm read found before authentication: nothing of it is decoded, counted, learned or followed by
    another read before `warm_access` has settled the owner (`reader` None: nothing queued; `replies` None:
    Redis unreachable, `found` is Postgres's and nothing is learned)."""

    found: AccessRead
    reader: Callable[[list], Any] | None
    replies: list | None


class WarmReadApi(APIView):
    """A dashboard read served from Redis whose cached answer rides in the round trip of the token's cached
    user: one round trip to Redis, no query (the first read of a portfolio in a process, or one after a write,
    asks Postgres too).

    The answer's key needs the portfolio's owner and versions, which authentication does not: so before DRF
    authenticates, a request naming a token takes them as this process last read them from Postgres
    (portfolio/access.py: nothing remembered, it probes Postgres now) and fetches the token's entry, Redis's
    copy of those numbers and the answer's raw bytes in one pipeline (`warm_queue`; reads only — a miss
    computes nothing, and nothing is remembered or written, for a caller not yet known). Authentication then
    uses the token's entry (config/authentication.py), and `warm_access` settles the owner before the answer
    is decoded or counted (portfolio_access_settle: the copy confirming what was remembered, or naming another
    owner; else Postgres is asked, what it said is learned, and the ordinary path reads the answer): anyone
    else's is 404, an unknown token 401, as on every route, and no such portfolio costs the same reads as
    another user's (its absence is remembered and copied too, and a copy naming another owner settles it
    whatever its versions). Postgres failing in a probe answers as on the ordinary path (503). Anything
    else (a session, a miss, an unreadable entry, Redis failing, a query cache on another Redis than the token
    cache) takes the ordinary path after authentication, which reads, computes or fails as it always did.
    """

    warm: _Warm | None = None

    def warm_queue(self, pipe, access: PortfolioAccess, request) -> Callable[[list], Any] | None:
        """Queue the answer's read on `pipe`; the reader of the pipeline's replies (None: nothing queued)."""
        raise NotImplementedError

    def initial(self, request, *args, **kwargs):
        if request.method in ("GET", "HEAD"):
            self.warm = self._warm_read(request, kwargs["portfolio_id"])
        super().initial(request, *args, **kwargs)

    def _warm_read(self, request, portfolio_id: int) -> _Warm | None:
        # One pipeline serves both reads only when the answers live on the token cache's Redis.
        if settings.QUERY_CACHE_ALIAS != TOKEN_CACHE_ALIAS:
            return None
        pipe = redis_client(TOKEN_CACHE_ALIAS).pipeline(transaction=False)
        hand_over = token_cache_queue(pipe, request)
        if hand_over is None:
            return None
        # What this process last read from Postgres, with its copy in Redis read in the same round trip (nothing
        # remembered: Postgres is asked now; failing, it raises here as the ordinary path's probe would: 503).
        found = portfolio_access_read(pipe, portfolio_id=portfolio_id)
        reader = None
        if found.access is not None:  # none: the token is read all the same (404 or 401 once authenticated)
            try:
                reader = self.warm_queue(pipe, found.access, request)
            except Exception:  # the ordinary path asks again after authentication and answers as it always did
                logger.warning("warm read not queued", exc_info=True)
                return None
        try:
            replies = pipe.execute()
        except REDIS_DOWN as error:
            # Authentication asks Postgres at once and the answer is read (or made) as usual: a Redis outage
            # costs no more waits than before. Nothing confirms what the process remembered: Postgres says.
            logger.debug("warm read not made: Redis unavailable", exc_info=True)
            hand_over(error)
            if found.probed is None:
                found = found._replace(access=portfolio_access_probe(portfolio_id=portfolio_id))
            return _Warm(found, None, None)
        except Exception:  # an entry of another type: the ordinary path reads (and replaces) it
            logger.warning("warm read not made", exc_info=True)
            return None
        hand_over(replies)
        return _Warm(found, reader, replies)

    def warm_access(self, request, portfolio_id: int) -> tuple[PortfolioAccess, Any]:
        """The caller's portfolio (404 for anyone else's) and the answer read before authentication, decoded
        only now (None: not read, a miss, or unreadable: the ordinary path reads or makes it)."""
        if self.warm is None:
            return owned_portfolio_access_or_404(request, portfolio_id), None
        if self.warm.replies is None:  # Redis was unreachable: Postgres's numbers, nothing read with them
            access, stands = portfolio_access_owned(self.warm.found.access, user_id=request.user.pk), False
        else:
            access, stands = portfolio_access_settle(self.warm.found, self.warm.replies, portfolio_id=portfolio_id,
                                                     user_id=request.user.pk)
        if access is None:
            raise Http404("No such portfolio.")
        answer = None
        if stands and self.warm.reader is not None:
            # As the ordinary path's read: a malformed entry or a stats flush failing is a miss, never a 500/503.
            with soft_fail("warm answer not read", level=logging.WARNING):
                answer = self.warm.reader(self.warm.replies)
        return access, answer


def json_bytes_response(body: bytes) -> HttpResponse:
    """An answer that is already JSON, sent as it is: no DRF rendering of what a cache holds rendered."""
    return HttpResponse(body, content_type="application/json")


class CsvTextParser(BaseParser):
    """A CSV file sent as the request body."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read(MAX_FILE_BYTES + 1)


class PortfolioListApi(ListAPIView):
    serializer_class = PortfolioSerializer

    def get_queryset(self):
        return selectors.portfolio_list(user=self.request.user)

    @extend_schema(request=PortfolioInputSerializer, responses={201: PortfolioSerializer})
    def post(self, request):
        body = PortfolioInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        portfolio = services.portfolio_create(owner=request.user, **body.validated_data)
        return Response(PortfolioSerializer(portfolio).data, status=status.HTTP_201_CREATED)


class PortfolioDetailApi(GenericAPIView):
    serializer_class = PortfolioSerializer

    def get(self, request, portfolio_id: int):
        return Response(PortfolioSerializer(owned_portfolio_or_404(request, portfolio_id)).data)

    @extend_schema(request=PortfolioUpdateSerializer, responses={200: PortfolioSerializer})
    def patch(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        body = PortfolioUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        portfolio = services.portfolio_update(portfolio=portfolio, **body.validated_data)
        return Response(PortfolioSerializer(portfolio).data)

    @extend_schema(responses={204: None})
    def delete(self, request, portfolio_id: int):
        services.portfolio_delete(portfolio=owned_portfolio_or_404(request, portfolio_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TransactionListApi(ListAPIView):
    serializer_class = TransactionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request user
            return Transaction.objects.none()
        portfolio = owned_portfolio_or_404(self.request, self.kwargs["portfolio_id"])
        return selectors.transaction_list(portfolio=portfolio)

    @extend_schema(request=TransactionInputSerializer, responses={201: TransactionSerializer})
    def post(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        body = TransactionInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        tx = services.transaction_create(portfolio=portfolio, data=body.to_input())
        return Response(TransactionSerializer(tx).data, status=status.HTTP_201_CREATED)


class TransactionDetailApi(GenericAPIView):
    serializer_class = TransactionSerializer

    def _get(self, request, portfolio_id: int, transaction_id: int) -> Transaction:
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        tx = selectors.transaction_list(portfolio=portfolio).filter(pk=transaction_id).first()
        if tx is None:
            raise Http404("No such transaction.")
        return tx

    def get_object(self) -> Transaction:
        # DRF's OPTIONS answer (SimpleMetadata) looks the object up to describe PUT: the same owned lookup.
        return self._get(self.request, self.kwargs["portfolio_id"], self.kwargs["transaction_id"])

    def get(self, request, portfolio_id: int, transaction_id: int):
        return Response(TransactionSerializer(self._get(request, portfolio_id, transaction_id)).data)

    def _update(self, request, portfolio_id: int, transaction_id: int, *, partial: bool):
        tx = self._get(request, portfolio_id, transaction_id)
        if not hasattr(request.data, "get"):
            return Response({"non_field_errors": ["Send an object of the fields to change."]},
                            status=status.HTTP_400_BAD_REQUEST)

        def changed(current: Transaction):
            # A PATCH's other fields are the row's as it is under the portfolio's lock (services.transaction_update)
            body = TransactionInputSerializer(data=transaction_input_merged(current, request.data) if partial
                                              else request.data)
            body.is_valid(raise_exception=True)
            return body.to_input()

        try:
            tx = services.transaction_update(transaction_obj=tx, data=changed)
        except Transaction.DoesNotExist:
            raise Http404("No such transaction.") from None
        return Response(TransactionSerializer(tx).data)

    @extend_schema(request=TransactionInputSerializer, responses={200: TransactionSerializer})
    def put(self, request, portfolio_id: int, transaction_id: int):
        return self._update(request, portfolio_id, transaction_id, partial=False)

    @extend_schema(request=TransactionInputSerializer, responses={200: TransactionSerializer})
    def patch(self, request, portfolio_id: int, transaction_id: int):
        return self._update(request, portfolio_id, transaction_id, partial=True)

    @extend_schema(responses={204: None})
    def delete(self, request, portfolio_id: int, transaction_id: int):
        services.transaction_delete(transaction_obj=self._get(request, portfolio_id, transaction_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TransactionImportApi(APIView):
    """CSV upload (multipart field `file`, or a text/csv body): all rows or none, errors per row."""

    parser_classes = [MultiPartParser, FormParser, CsvTextParser]

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {
                     "file": {"type": "string", "format": "binary"},
                     "account": {"type": "integer", "description": "the account rows naming none go into"}}},
                 "text/csv": {"type": "string"}},
        parameters=[OpenApiParameter("account", int, description="text/csv: the account rows naming none go into "
                                                                 "(default: the portfolio's default account)")],
        # 400: the rows' errors, no file at all, or a body the parser could not read.
        # 202: a file of more than IMPORT_SYNC_MAX_ROWS lines is imported by a worker; follow progress_url.
        responses={201: ImportResultSerializer, 202: inline_serializer("ImportQueued", {
            "job_id": serializers.CharField(), "progress_url": serializers.CharField()}),
            400: PolymorphicProxySerializer(
            component_name="ImportRejected", resource_type_field_name=None, serializers=[
                ImportErrorsSerializer,
                inline_serializer("ImportFileMissing", {"file": serializers.ListField(child=serializers.CharField())}),
                inline_serializer("ImportAccountUnknown", {
                    "account": serializers.ListField(child=serializers.CharField())}),
                inline_serializer("ImportUnreadable", {"detail": serializers.CharField()}),
            ])},
    )
    def post(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        fields = request.data if hasattr(request.data, "get") else {}
        try:
            account = import_account_get(portfolio=portfolio,
                                         value=fields.get("account") or request.query_params.get("account"))
        except ValidationError as error:
            return Response(error.message_dict, status=status.HTTP_400_BAD_REQUEST)
        upload = fields.get("file")
        if upload is not None and hasattr(upload, "read"):
            content = upload.read(MAX_FILE_BYTES + 1)
        elif isinstance(request.data, bytes | str):
            content = request.data if isinstance(request.data, bytes) else request.data.encode()
        else:
            return Response({"file": ["Upload a CSV file in the field 'file' (or send text/csv)."]},
                            status=status.HTTP_400_BAD_REQUEST)
        try:
            result = transactions_import_or_queue(portfolio=portfolio, content=content, owner_id=request.user.pk,
                                                  account=account)
        except ImportRejected as rejected:
            return Response(ImportErrorsSerializer({"errors": rejected.row_errors}).data,
                            status=status.HTTP_400_BAD_REQUEST)
        if isinstance(result, str):  # queued for a worker
            return Response({"job_id": result, "progress_url": reverse("api-job-detail", args=[result])},
                            status=status.HTTP_202_ACCEPTED)
        return Response(ImportResultSerializer(result).data, status=status.HTTP_201_CREATED)


class TransactionExportApi(APIView):
    """The portfolio's transactions in the generic import format: CSV (default) or JSON."""

    @extend_schema(parameters=[OpenApiParameter("format", str, enum=["csv", "json"], default="csv")],
                   responses={(200, "text/csv"): str,
                              (200, "application/json"): inline_serializer("TransactionExport", {
                       "portfolio": inline_serializer("TransactionExportPortfolio", {
                           "name": serializers.CharField(), "base_currency": serializers.CharField()}),
                       # The generic import format's columns, as text: what the CSV export holds.
                       "transactions": inline_serializer("TransactionExportRow", {
                           column: serializers.CharField(allow_blank=True) for column in EXPORT_COLUMNS},
                           many=True)})})
    def get(self, request, portfolio_id: int):
        portfolio = owned_portfolio_or_404(request, portfolio_id)
        export_format = request.query_params.get("format", "csv").lower()
        if export_format not in ("csv", "json"):
            raise serializers.ValidationError({"format": f"'{export_format}' is not csv or json."})
        filename = f"folio-{slugify(portfolio.name) or portfolio.pk}-transactions"
        if export_format == "json":
            response = JsonResponse({"portfolio": {"name": portfolio.name, "base_currency": portfolio.base_currency},
                                     "transactions": transaction_rows(portfolio=portfolio)})
            response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
            return response
        response = HttpResponse(transactions_csv(portfolio=portfolio), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response


class UserExportApi(APIView):
    """All of the caller's data as one JSON document."""

    @extend_schema(responses={200: dict})
    def get(self, request):
        response = JsonResponse(user_data_export(user=request.user))
        response["Content-Disposition"] = 'attachment; filename="folio-export.json"'
        return response
