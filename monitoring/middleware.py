"""Per-endpoint latency, recorded into Redis histograms (monitoring/timing.py) after each response."""

import logging
import time

from monitoring.timing import timing_record

logger = logging.getLogger(__name__)

# Static files and the probes of load balancers and Prometheus are not the app's endpoints.
SKIPPED_PREFIXES = ("/static/", "/healthz", "/metrics", "/favicon.ico")


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
            route = f"/{match.route}" if match and match.route else "unmatched"
            try:
                timing_record(series=f"endpoint:{request.method} {route}", seconds=elapsed,
                              counters={f"s{response.status_code // 100}xx": 1})
            except Exception:  # Redis down: the response matters, its timing does not
                logger.debug("request timing not recorded", exc_info=True)
        return response
