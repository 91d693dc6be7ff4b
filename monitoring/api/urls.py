from django.urls import path, register_converter

from core.jobs import JOB_ID_PATTERN
from monitoring.api import views


class JobIdConverter:
    """A job's id: 32 hex digits, nothing else ("<id>:errors" would name the job's list of errors in Redis)."""

    regex = JOB_ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(JobIdConverter, "jobid")

urlpatterns = [
    path("jobs/<jobid:job_id>/", views.JobDetailApi.as_view(), name="api-job-detail"),
    path("monitoring/cache-stats/", views.CacheStatsApi.as_view(), name="api-monitoring-cache"),
    path("monitoring/cache/flush/", views.CacheFlushApi.as_view(), name="api-monitoring-cache-flush"),
    path("monitoring/events/", views.EventsApi.as_view(), name="api-monitoring-events"),
    path("monitoring/providers/", views.ProvidersApi.as_view(), name="api-monitoring-providers"),
    path("monitoring/jobs/", views.JobsApi.as_view(), name="api-monitoring-jobs"),
    path("monitoring/endpoints/", views.EndpointsApi.as_view(), name="api-monitoring-endpoints"),
]
