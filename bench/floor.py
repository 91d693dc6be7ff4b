"""The framework floor: the cheapest authenticated API answer this stack can give — a DRF view with the
product's authentication and permission classes, behind the same middleware, in the same web server,
returning constant bytes. The dashboard endpoints are measured against it under the same load, so
what they cost beyond the framework itself shows as a ratio, whatever the machine.

`?bytes=N` answers exactly N constant bytes (a JSON object): the load run asks for the sizes of the
dashboard's own answers, so the floor carries the same bytes over the same sockets and the ratio
isolates the work of our code, not the size of a 500-holding answer.
"""

from functools import lru_cache

from django.http import HttpResponse
from rest_framework.views import APIView

BODY = b'{"status":"ok","floor":true}'
MAX_BYTES = 4 * 1024 * 1024
_ENVELOPE = len(b'{"pad":""}')


@lru_cache(maxsize=16)
def body_of(size: int) -> bytes:
    """`size` bytes of JSON, built once per size."""
    if size <= len(BODY):
        return BODY
    return b'{"pad":"' + b"x" * (size - _ENVELOPE) + b'"}'


class FrameworkFloorApi(APIView):
    def get(self, request):
        try:
            size = min(int(request.query_params.get("bytes", 0)), MAX_BYTES)
        except ValueError:
            size = 0
        return HttpResponse(body_of(size), content_type="application/json")
