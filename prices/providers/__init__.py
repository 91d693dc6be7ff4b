"""Provider clients by name (`Instrument.provider`). Imported lazily: a deployment that
uses one provider never loads the others."""

from functools import cache
from importlib import import_module

from prices.providers.base import PriceProvider

PROVIDER_CLASSES = {
    "simulated": "prices.providers.simulated.SimulatedProvider",
    "yahoo": "prices.providers.yahoo.YahooProvider",
    "twelvedata": "prices.providers.twelvedata.TwelveDataProvider",
    "coingecko": "prices.providers.coingecko.CoinGeckoProvider",
    "stooq": "prices.providers.stooq.StooqProvider",
    "alphavantage": "prices.providers.alphavantage.AlphaVantageProvider",
}


def provider_class_get(name: str) -> type[PriceProvider]:
    try:
        dotted = PROVIDER_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown price provider {name!r}") from None
    module_name, class_name = dotted.rsplit(".", 1)
    return getattr(import_module(module_name), class_name)


def searchable(name: str) -> bool:
    """Whether provider `name` has a search endpoint (a client's `search`); False for a name Folio does
    not know. Loads that one client only."""
    return name in PROVIDER_CLASSES and provider_class_get(name).supports_search()


@cache
def provider_get(name: str) -> PriceProvider:
    """The shared client of a provider (one pooled HTTP session per process)."""
    return provider_class_get(name)()
