"""The product's URLs plus the naive baseline views, which exist only for the benchmarks."""

from django.urls import path

from bench import naive
from config.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    path("bench/naive-dashboard/<int:portfolio_id>/", naive.naive_dashboard_api, name="bench-naive-dashboard"),
    path("bench/naive-page/<int:portfolio_id>/", naive.naive_dashboard_page, name="bench-naive-page"),
    *product_urlpatterns,
]
