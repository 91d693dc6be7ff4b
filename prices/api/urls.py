from django.urls import path

from prices.api import views

urlpatterns = [
    path("instruments/<str:symbol>/prices/", views.InstrumentPricesApi.as_view(), name="api-instrument-prices"),
    path("prices/refresh/", views.PricesRefreshApi.as_view(), name="api-prices-refresh"),
]
