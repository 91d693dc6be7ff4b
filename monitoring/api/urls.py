from django.urls import path, re_path

from core.jobs import JOB_ID_PATTERN
from monitoring.api import views

urlpatterns = [
    re_path(rf"^jobs/(?P<job_id>{JOB_ID_PATTERN})/$", views.JobDetailApi.as_view(), name="api-job-detail"),
    path("monitoring/cache-stats/", views.CacheStatsApi.as_view(), name="api-monitoring-cache"),
    path("monitoring/cache/flush/", views.CacheFlushApi.as_view(), name="api-monitoring-cache-flush"),
    path("monitoring/events/", views.EventsApi.as_view(), name="api-monitoring-events"),
    path("monitoring/providers/", views.ProvidersApi.as_view(), name="api-monitoring-providers"),
    path("monitoring/jobs/", views.JobsApi.as_view(), name="api-monitoring-jobs"),
    path("monitoring/endpoints/", views.EndpointsApi.as_view(), name="api-monitoring-endpoints"),
]
