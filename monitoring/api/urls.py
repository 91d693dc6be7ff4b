from django.urls import path

from monitoring.api import views

urlpatterns = [
    path("jobs/<str:job_id>/", views.JobDetailApi.as_view(), name="api-job-detail"),
]
