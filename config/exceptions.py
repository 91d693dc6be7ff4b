"""API error shape: service-layer ValidationErrors become 400s that name the field."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views.defaults import page_not_found
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

# Seconds a client should wait before asking again while Redis (cache, jobs, broker) is unreachable.
REDIS_DOWN_RETRY_AFTER = 5


def api_exception_handler(exc, context):
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        # Whatever lives only in Redis (jobs, events, the broker) is unavailable for a moment: say so.
        return Response({"detail": "Temporarily unavailable: the cache and job store cannot be reached."},
                        status=status.HTTP_503_SERVICE_UNAVAILABLE,
                        headers={"Retry-After": str(REDIS_DOWN_RETRY_AFTER)})
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail=detail)
    return exception_handler(exc, context)


def not_found(request, exception=None):
    """404 as JSON under /api/ (a client parsing JSON gets JSON), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
