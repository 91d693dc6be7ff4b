from django.urls import path

from prices.api import search

urlpatterns = [
    path("instruments/search/", search.InstrumentSearchApi.as_view(), name="api-instrument-search"),
]
