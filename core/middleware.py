"""Per-endpoint latency, recorded into Redis histograms (core/timing.py).

Samples are buffered in the process and written in one pipeline at most every
REQUEST_TIMING_FLUSH_SECONDS, so a busy web process pays a Redis round trip a second, not one per
request. A process that dies loses at most that last second of samples.
"""

import logging
import threading
import time
from collections import defaultdict

from django.conf import settings

from core.redis_store import redis_client
from core.soft import soft_fail
from core.timing import timing_record_many

logger = logging.getLogger(__name__)

# Static files and the probes of load balancers and Prometheus are not the app's endpoints.
SKIPPED_PREFIXES = ("/static/", "/healthz", "/metrics", "/favicon.ico")


class _Buffer:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: dict[str, list[tuple[float, int]]] = defaultdict(list)
        self.flushed_at = time.monotonic()

    def add(self, series: str, seconds: float, status: int) -> None:
        with self.lock:
            self.samples[series].append((seconds, status))
            if time.monotonic() - self.flushed_at < settings.REQUEST_TIMING_FLUSH_SECONDS:
                return
            samples, self.samples = self.samples, defaultdict(list)
            self.flushed_at = time.monotonic()
        # Redis down: the responses matter, their timings do not.
        with soft_fail("request timings not recorded", level=logging.DEBUG):
            pipe = redis_client().pipeline(transaction=False)
            for name, observed in samples.items():
                timing_record_many(series=name, pipe=pipe,
                                   samples=[(elapsed, {f"s{code // 100}xx": 1}) for elapsed, code in observed])
            pipe.execute()


_buffer = _Buffer()


class RequestTimingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        if not request.path.startswith(SKIPPED_PREFIXES):
            match = getattr(request, "resolver_match", None)
            # The route pattern, not the path: one series per endpoint, not per portfolio id.
            # Paths no route matches (scanners, typos) are one row, whatever the method or path.
            # (The dashboard's route is the empty string: a match, not a miss.)
            endpoint = f"{request.method} /{match.route}" if match is not None else "other (404)"
            _buffer.add(f"endpoint:{endpoint}", elapsed, response.status_code)
        return response
