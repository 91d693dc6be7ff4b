"""The events log, record side: any process or thread records an event in one Redis push.

Hot paths (provider calls in worker threads) must not open database connections or wait on them, so
`event_record` only pushes to a Redis list; the monitoring app moves the buffer into Postgres and shows
it. If Redis is down the event goes to the fallback writer the monitoring app registers (the database).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.db import models
from django.utils import timezone

from core.redis_store import redis_client, redis_key

logger = logging.getLogger(__name__)

BUFFER_KEY = redis_key("events", "buffer")
BUFFER_MAX = 10_000  # a flood is cut here rather than filling Redis


class EventLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class EventKind(models.TextChoices):
    JOB_STARTED = "job_started", "Job started"
    JOB_FINISHED = "job_finished", "Job finished"
    JOB_FAILED = "job_failed", "Job failed"
    PROVIDER_ERROR = "provider_error", "Provider error"
    CIRCUIT_OPENED = "circuit_opened", "Circuit opened"
    CIRCUIT_CLOSED = "circuit_closed", "Circuit closed"
    RATE_LIMIT_WAIT = "rate_limit_wait", "Rate-limit wait"
    QUOTA_EXHAUSTED = "quota_exhausted", "Quota exhausted"
    CACHE_FLUSH = "cache_flush", "Cache flush"


# Writes an event (a dict as buffered) when Redis cannot take it; set by the app that stores events.
_fallback: list[Callable[[dict], None]] = []


def event_fallback_register(writer: Callable[[dict], None]) -> None:
    _fallback[:] = [writer]


def event_record(*, kind: str, message: str, level: str = EventLevel.INFO, **context) -> None:
    """Record an event; never raises (an event about a failure must not cause one)."""
    event = {"created_at": timezone.now().isoformat(), "level": level, "kind": kind,
             "message": message[:500], "context": context}
    log = logger.warning if level != EventLevel.INFO else logger.info
    log("event %s: %s %s", kind, message, context or "")
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.rpush(BUFFER_KEY, json.dumps(event, default=str))
        pipe.ltrim(BUFFER_KEY, -BUFFER_MAX, -1)
        pipe.execute()
    except Exception:
        try:
            for writer in _fallback:
                writer(event)
        except Exception:
            logger.exception("event %s could not be recorded anywhere", kind)


def event_record_once(*, once_key: str, window_seconds: int, kind: str, message: str, level: str, **context) -> None:
    """`event_record`, at most once per `window_seconds` per `once_key` (a flood tells nothing more)."""
    try:
        fresh = redis_client().set(redis_key("event-once", once_key), 1, nx=True, ex=window_seconds)
    except Exception:
        fresh = True
    if fresh:
        event_record(kind=kind, level=level, message=message, **context)
