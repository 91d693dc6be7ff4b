from django.db import models
from django.utils import timezone

from core.events import EventKind, EventLevel


class MonitoringEvent(models.Model):
    """The system log shown on /monitoring: what the workers and providers did, and when."""

    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=10, choices=EventLevel.choices, default=EventLevel.INFO)
    kind = models.CharField(max_length=30, choices=EventKind.choices)
    message = models.CharField(max_length=500)
    context = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="event_created_idx"),
            models.Index(fields=["kind", "-created_at"], name="event_kind_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.level} {self.kind}: {self.message}"
