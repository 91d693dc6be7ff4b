"""What a web process does once, before its first request (config/wsgi.py)."""

import gc
from importlib import import_module

from django.conf import settings


def web_process_ready() -> None:
    """Import the URLconf (the views, serializers and DRF behind them), so that the first request does not pay
    for it, then move every object alive now out of the garbage collector's reach (gc.freeze): modules,
    classes, settings and the URLconf live as long as the process, yet each full collection — triggered by the
    allocations of ordinary requests, a cold dashboard valuation makes ~100 k objects — walked all ~150 k of
    them again, 55-100 ms a time, about twice per 100 cold dashboard reads. What requests allocate afterwards
    is collected as before."""
    import_module(settings.ROOT_URLCONF)
    gc.freeze()
