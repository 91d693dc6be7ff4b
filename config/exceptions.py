"""Error answers: service-layer ValidationErrors become 400s that name the field; an unreachable Redis or
database a 503 with Retry-After (JSON under /api/), never a 500."""

import logging
import sys

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse, JsonResponse
from django.template import loader
from django.views.defaults import page_not_found
from django.views.defaults import server_error as django_server_error
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.outages import DATABASE_DOWN
from core.redis_store import REDIS_DOWN

logger = logging.getLogger(__name__)

# Seconds a client should wait before asking again while Redis (cache, jobs, broker) is unreachable.
REDIS_DOWN_RETRY_AFTER = 5
# The same while Postgres is unreachable: about what a restart or a managed failover takes.
DATABASE_DOWN_RETRY_AFTER = 10
DATABASE_UNAVAILABLE_DETAIL = "Temporarily unavailable: the database cannot be reached."


def database_unavailable(request) -> HttpResponse:
    """503 with Retry-After: JSON under /api/, a plain page (no template context: it needs no database)."""
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": DATABASE_UNAVAILABLE_DETAIL}, status=503)
    else:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    response["Retry-After"] = str(DATABASE_DOWN_RETRY_AFTER)
    return response


def api_exception_handler(exc, context):
    if isinstance(exc, REDIS_DOWN):
        # Whatever lives only in Redis (jobs, events, the broker) is unavailable for a moment: say so.
        return Response({"detail": "Temporarily unavailable: the cache and job store cannot be reached."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(REDIS_DOWN_RETRY_AFTER)})
    if isinstance(exc, DATABASE_DOWN):
        # Answered here for API views (server_error below answers everything else): same body and header.
        request = context["request"]
        logger.error("Database unavailable: %s %s", request.method, request.path, exc_info=exc)
        return Response({"detail": DATABASE_UNAVAILABLE_DETAIL}, status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(DATABASE_DOWN_RETRY_AFTER)})
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        # Every field's errors a list, as the API's errors are documented ({"field": ["message"]}), however the
        # error was raised (DRF keeps {"field": "message"} as it is given).
        exc.detail = {field: errors if isinstance(errors, list | dict) else [errors]
                      for field, errors in exc.detail.items()}
    return exception_handler(exc, context)


def not_found(request, exception=None):
    """404 as JSON under /api/ (a client parsing JSON gets JSON), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


def server_error(request):
    """handler500: whatever escaped a view or a middleware. A database that cannot be reached is a 503 (the
    request may be retried as it is); anything else a 500, as JSON under /api/."""
    if isinstance(sys.exc_info()[1], DATABASE_DOWN):
        return database_unavailable(request)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Server error."}, status=500)
    return django_server_error(request)
