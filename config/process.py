"""What a web process does once, before its first request (config/wsgi.py)."""

import gc
import logging
from importlib import import_module

from django.conf import settings
from django.utils.module_loading import import_string

# What each web process loads before its first request besides the URLconf, named (config wires the apps by
# dotted path, never by import): the exchange calendars, the first valuation's ~0.75 s otherwise.
WEB_PROCESS_LOADS = ("prices.market_calendar.market_calendars_load",)

logger = logging.getLogger(__name__)


def web_process_ready() -> None:
    """Import the URLconf (the views, serializers and DRF behind them) and load the exchange calendars (the
    first valuation's ~0.75 s: prices/market_calendar.py), so that the first request does not pay for them,
    then move every object alive now out of the garbage collector's reach (gc.freeze): modules,
    classes, settings and the URLconf live as long as the process, yet each full collection — triggered by the
    allocations of ordinary requests, a cold dashboard valuation makes ~100 k objects — walked all ~150 k of
    them again, 55-100 ms a time, about twice per 100 cold dashboard reads. What requests allocate afterwards
    is collected as before."""
    import_module(settings.ROOT_URLCONF)
    for load in WEB_PROCESS_LOADS:
        try:
            import_string(load)()
        except Exception:  # a head start, never a condition of serving: the web server would halt on a boot error
            logger.warning("Web process start: %s failed; the first request that needs it will try again",
                           load, exc_info=True)
    gc.freeze()
