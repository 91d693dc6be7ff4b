from django.urls import path, re_path

from monitoring.api import views

urlpatterns = [
    # A job's id is 32 hex digits (core.jobs.job_create): "<id>:errors" would name its list of errors in Redis.
    re_path(r"^jobs/(?P<job_id>[0-9a-f]{32})/$", views.JobDetailApi.as_view(), name="api-job-detail"),
    path("monitoring/cache-stats/", views.CacheStatsApi.as_view(), name="api-monitoring-cache"),
    path("monitoring/cache/flush/", views.CacheFlushApi.as_view(), name="api-monitoring-cache-flush"),
    path("monitoring/events/", views.EventsApi.as_view(), name="api-monitoring-events"),
    path("monitoring/providers/", views.ProvidersApi.as_view(), name="api-monitoring-providers"),
    path("monitoring/jobs/", views.JobsApi.as_view(), name="api-monitoring-jobs"),
    path("monitoring/endpoints/", views.EndpointsApi.as_view(), name="api-monitoring-endpoints"),
]
