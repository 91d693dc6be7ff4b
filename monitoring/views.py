"""The /monitoring page (staff), /healthz for load balancers, /metrics for Prometheus."""

import hmac
import time

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from core.events import EventKind, EventLevel
from core.redis_store import REDIS_DOWN, redis_client
from monitoring.metrics import metrics_text
from monitoring.selectors import HEARTBEAT_KEY, HEARTBEAT_MAX_AGE


@staff_member_required
def monitoring_page(request):
    return render(request, "monitoring/monitoring.html", {
        "flower_url": settings.FLOWER_URL, "event_kinds": EventKind.choices, "event_levels": EventLevel.choices})


@never_cache
def healthz(request):
    """200 while the web tier can serve (the database answers); the rest reported, not fatal: with
    Redis or the workers down the site is degraded, not down."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"down: {type(error).__name__}"
    try:
        client = redis_client()
        client.ping()
        checks["redis"] = "ok"
        beat = client.get(HEARTBEAT_KEY)
        age = time.time() - float(beat) if beat else None
        checks["workers"] = "ok" if age is not None and age < HEARTBEAT_MAX_AGE else \
            "no heartbeat" if age is None else f"last heartbeat {age:.0f} s ago"
    except Exception as error:
        checks["redis"] = f"down: {type(error).__name__}"
        checks["workers"] = "unknown"
    if checks["database"] != "ok":
        overall, code = "down", 503
    else:
        overall = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
        code = 200
    return JsonResponse({"status": overall, "checks": checks}, status=code)


def _metrics_allowed(request) -> bool | None:
    """True to serve; False for a signed-in non-staff user (403); None to ask for credentials (401)."""
    if request.user.is_authenticated and request.user.is_staff:
        return True
    header = request.headers.get("Authorization", "")
    token = settings.METRICS_TOKEN
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    return False if request.user.is_authenticated else None


@never_cache
def metrics(request):
    allowed = _metrics_allowed(request)
    if allowed is None:
        response = HttpResponse("Authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="folio-metrics"'
        return response
    if not allowed:
        return HttpResponse("Staff only\n", status=403, content_type="text/plain")
    try:
        text = metrics_text()
    except REDIS_DOWN:
        # Most figures live in Redis: the scrape fails, saying why (up == 0 for this target), not a 500 page.
        return HttpResponse("Redis unavailable\n", status=503, content_type="text/plain")
    return HttpResponse(text, content_type=CONTENT_TYPE_LATEST)
