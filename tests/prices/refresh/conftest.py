from collections.abc import Iterator

import pytest

from prices.providers import provider_get
from tests.stubs.market import MarketStub


@pytest.fixture
def market(settings) -> Iterator[MarketStub]:
    """A Yahoo look-alike the refresh jobs talk to, unpaced, with charts regenerated without delay."""
    stub = MarketStub()
    with stub.running():
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": stub.url, "api_key": None}}
        settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
        settings.CHART_DEBOUNCE_SECONDS = 0
        provider_get.cache_clear()  # the next client is built against the stub
        yield stub
    provider_get.cache_clear()
