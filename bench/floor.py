"""The framework floor: the cheapest authenticated API answer this stack can give — a DRF view with the
product's authentication and permission classes, behind the same middleware, in the same gunicorn,
returning constant bytes. The dashboard endpoints are measured against it under the same load, so
what they cost beyond the framework itself shows as a ratio, whatever the machine."""

from django.http import HttpResponse
from rest_framework.views import APIView

# About the size of the initial-data answer's envelope; the body's size is not what is measured.
BODY = b'{"status":"ok","floor":true}'


class FrameworkFloorApi(APIView):
    def get(self, request):
        return HttpResponse(BODY, content_type="application/json")
