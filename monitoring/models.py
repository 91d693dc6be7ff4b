from django.db import models
from django.utils import timezone


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
