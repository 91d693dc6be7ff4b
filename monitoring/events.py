"""The events log: recorded from any process or thread in one Redis push, stored in batches.

Hot paths (provider calls in worker threads) must not open database connections or wait on them,
so `event_record` only pushes to a Redis list; `events_flush` moves the buffer into Postgres (a
beat task every few seconds, and before every read of the log). If Redis is down the event is
written to the database directly instead.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_redis import get_redis_connection

from monitoring.models import EventKind, EventLevel, MonitoringEvent

logger = logging.getLogger(__name__)

BUFFER_KEY = "folio:events:buffer"
BUFFER_MAX = 10_000  # a flood is cut here rather than filling Redis
FLUSH_BATCH = 1000


def event_record(*, kind: str, message: str, level: str = EventLevel.INFO, **context) -> None:
    """Record an event; never raises (an event about a failure must not cause one)."""
    event = {"created_at": timezone.now().isoformat(), "level": level, "kind": kind,
             "message": message[:500], "context": context}
    log = logger.warning if level != EventLevel.INFO else logger.info
    log("event %s: %s %s", kind, message, context or "")
    try:
        client = get_redis_connection("default")
        pipe = client.pipeline(transaction=False)
        pipe.rpush(BUFFER_KEY, json.dumps(event, default=str))
        pipe.ltrim(BUFFER_KEY, -BUFFER_MAX, -1)
        pipe.execute()
    except Exception:
        try:
            MonitoringEvent.objects.create(**{**event, "created_at": datetime.fromisoformat(event["created_at"])})
        except Exception:
            logger.exception("event %s could not be recorded anywhere", kind)


def events_flush() -> int:
    """Move buffered events into the database; returns how many were stored."""
    client = get_redis_connection("default")
    stored = 0
    while True:
        pipe = client.pipeline()
        pipe.lrange(BUFFER_KEY, 0, FLUSH_BATCH - 1)
        pipe.ltrim(BUFFER_KEY, FLUSH_BATCH, -1)
        raw, _ = pipe.execute()
        if not raw:
            return stored
        rows = []
        for item in raw:
            event = json.loads(item)
            rows.append(MonitoringEvent(
                created_at=datetime.fromisoformat(event["created_at"]), level=event["level"],
                kind=event["kind"], message=event["message"], context=event.get("context") or {}))
        MonitoringEvent.objects.bulk_create(rows)
        stored += len(rows)


def events_prune(*, now: datetime | None = None) -> int:
    """Retention: drop events older than EVENTS_MAX_AGE_DAYS, and beyond the newest EVENTS_MAX_COUNT."""
    now = now or timezone.now()
    too_old = now - timedelta(days=settings.EVENTS_MAX_AGE_DAYS)
    deleted, _ = MonitoringEvent.objects.filter(created_at__lt=too_old).delete()
    cutoff = (
        MonitoringEvent.objects.order_by("-created_at", "-id")
        .values_list("created_at", flat=True)[settings.EVENTS_MAX_COUNT : settings.EVENTS_MAX_COUNT + 1]
    )
    if cutoff:
        more, _ = MonitoringEvent.objects.filter(created_at__lte=cutoff[0]).delete()
        deleted += more
    return deleted


__all__ = ["EventKind", "EventLevel", "event_record", "events_flush", "events_prune"]
