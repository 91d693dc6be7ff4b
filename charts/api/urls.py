from django.urls import path

from charts.api import views

urlpatterns = [
    path("dashboard-chart-data/<int:portfolio_id>/", views.ChartDataApi.as_view(), name="api-chart-data"),
    path("portfolios/<int:portfolio_id>/performance/", views.PerformanceApi.as_view(), name="api-performance"),
    path("chart-generator-progress/<int:portfolio_id>/", views.ChartProgressApi.as_view(), name="api-chart-progress"),
]
