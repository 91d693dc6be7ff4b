"""The events log, storage side: the buffer that `core.events.event_record` fills is moved into Postgres
in batches (a beat task every few seconds, and before every read of the log), and pruned."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.events import BUFFER_KEY
from core.redis_store import redis_client
from monitoring.models import MonitoringEvent

FLUSH_BATCH = 1000


def event_store(event: dict) -> None:
    """Write one event (as buffered) straight to the database: the fallback when Redis is down."""
    MonitoringEvent.objects.create(**{**event, "created_at": datetime.fromisoformat(event["created_at"])})


def events_flush() -> int:
    """Move buffered events into the database; returns how many were stored."""
    client = redis_client()
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
