"""The product's URLs plus the naive baseline views and the framework floor, which exist only for the
benchmarks."""

from django.urls import path

from bench import naive
from bench.floor import FrameworkFloorApi
from config.urls import urlpatterns as product_urlpatterns

urlpatterns = [
    path("bench/naive-dashboard/<int:portfolio_id>/", naive.naive_dashboard_api, name="bench-naive-dashboard"),
    path("bench/naive-page/<int:portfolio_id>/", naive.naive_dashboard_page, name="bench-naive-page"),
    path("bench/floor/", FrameworkFloorApi.as_view(), name="bench-floor"),
    *product_urlpatterns,
]
