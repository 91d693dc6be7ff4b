from django.urls import path

from monitoring import views

urlpatterns = [
    path("monitoring/", views.monitoring_page, name="monitoring"),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
]
