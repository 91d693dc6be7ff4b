from django.urls import path

from prices.api import search, views

urlpatterns = [
    path("instruments/search/", search.InstrumentSearchApi.as_view(), name="api-instrument-search"),
    path("instruments/<str:symbol>/prices/", views.InstrumentPricesApi.as_view(), name="api-instrument-prices"),
    path("prices/refresh/", views.PricesRefreshApi.as_view(), name="api-prices-refresh"),
]
