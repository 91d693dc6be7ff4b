"""Per-endpoint latency, recorded into Redis histograms (core/timing.py).

Samples are buffered in the process and written in one pipeline at most every
REQUEST_TIMING_FLUSH_SECONDS, so a busy web process pays a Redis round trip a second, not one per
request. A process that dies loses at most that last second of samples.
"""

import logging
import time
from collections import defaultdict

from django.conf import settings

from core.batching import Batcher
from core.redis_store import redis_client
from core.soft import soft_fail
from core.timing import timing_record_many

logger = logging.getLogger(__name__)

# Static files and the probes of load balancers and Prometheus are not the app's endpoints.
SKIPPED_PREFIXES = ("/static/", "/healthz", "/metrics", "/favicon.ico")


def _timings_write(samples: list[tuple[str, float, int]]) -> None:
    """(series, seconds, status) of the requests since the last write, one pipeline."""
    by_series: dict[str, list[tuple[float, dict[str, int]]]] = defaultdict(list)
    for series, elapsed, code in samples:
        by_series[series].append((elapsed, {f"s{code // 100}xx": 1}))
    # Redis down: the responses matter, their timings do not.
    with soft_fail("request timings not recorded", level=logging.DEBUG):
        pipe = redis_client().pipeline(transaction=False)
        for name, observed in by_series.items():
            timing_record_many(series=name, pipe=pipe, samples=observed)
        pipe.execute()


_buffer: Batcher[tuple[str, float, int]] = Batcher(interval=lambda: settings.REQUEST_TIMING_FLUSH_SECONDS,
                                                   flush=_timings_write)


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
            _buffer.add((f"endpoint:{endpoint}", elapsed, response.status_code))
        return response
