"""Instrument search: what a user may pick when typing a trade.

Known instruments answer first, from the database (shared ones and the user's own manual ones, never
another user's). Then each configured provider with a search endpoint (PRICE_PROVIDER,
CRYPTO_PRICE_PROVIDER) adds its own answer — from the day's cache when someone asked the same query,
otherwise a worker fetches it through the provider's gateway (same pacing, quota and breaker as the
quotes) and the caller asks again: a request never waits for a provider (prices/search_cache.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from core.tasks import task_send
from prices.models import Instrument
from prices.providers import searchable
from prices.providers.base import ProviderError
from prices.providers.gateway import PriceService
from prices.search_cache import (
    FAILED,
    query_normalize,
    search_answer_get,
    search_answer_set,
    search_claim,
    search_claim_release,
    search_failure_set,
)
from prices.services import COINGECKO_IDS

logger = logging.getLogger(__name__)

# Known instruments listed before any provider's: a dropdown's worth.
LOCAL_RESULTS = 10
SEARCH_TASK = "prices.instrument_search_task"


@dataclass
class SearchAnswer:
    query: str
    results: list[dict] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # providers whose answer a worker is fetching
    failed: list[str] = field(default_factory=list)  # providers whose search failed lately

    @property
    def complete(self) -> bool:
        return not self.pending


def search_providers() -> list[str]:
    """The configured providers that have a search endpoint, stocks' first."""
    names: list[str] = []
    for name in (settings.PRICE_PROVIDER, settings.CRYPTO_PRICE_PROVIDER):
        if searchable(name) and name not in names:
            names.append(name)
    return names


def _local_result(instrument: Instrument) -> dict:
    return {"symbol": instrument.symbol, "name": instrument.name, "exchange": instrument.exchange_mic,
            "currency": instrument.currency, "asset_class": instrument.asset_class,
            "provider": instrument.provider, "provider_symbol": instrument.provider_symbol, "known": True}


def instruments_search_local(*, query: str, visible: Q) -> list[dict]:
    """Known instruments among `visible` (whom the asker may read: told by the caller, prices knows no
    holders) whose symbol starts with, name contains, or provider symbol is the query; exact symbols first."""
    matches = Q(symbol__istartswith=query) | Q(name__icontains=query) | Q(provider_symbol__iexact=query)
    found = list(Instrument.objects.filter(visible).filter(matches)[: LOCAL_RESULTS * 5])
    found.sort(key=lambda i: (i.symbol.lower() != query and i.provider_symbol.lower() != query,
                              i.owner_id is None, len(i.symbol), i.symbol))
    return [_local_result(instrument) for instrument in found[:LOCAL_RESULTS]]


def coin_symbol(hit: dict) -> dict:
    """A CoinGecko hit under the symbol a trade names it by: its ticker when that ticker leads Folio to
    this coin (BTC → bitcoin), else its id (a second coin calling itself BTC is not bitcoin)."""
    ticker, coin_id = hit["symbol"], hit["provider_symbol"]
    if COINGECKO_IDS.get(ticker, ticker.lower()) != coin_id:
        hit = {**hit, "symbol": coin_id.upper()}
    return hit


def _provider_results(provider: str, query: str, answer: SearchAnswer) -> list[dict]:
    cached = search_answer_get(provider=provider, query=query)
    if cached is None:
        try:
            if search_claim(provider=provider, query=query):
                task_send(SEARCH_TASK, kwargs={"provider": provider, "query": query})
        except (RedisError, BrokerError):
            logger.warning("search: cannot queue the %s search, Redis unavailable", provider)
            answer.failed.append(provider)
            return []
        answer.pending.append(provider)
        return []
    if cached["status"] == FAILED:
        answer.failed.append(provider)
        return []
    hits = [{**hit, "known": False} for hit in cached["hits"]]
    return [coin_symbol(hit) if hit["provider"] == "coingecko" else hit for hit in hits]


def _serves(provider: str, asset_class: str) -> bool:
    """With a provider of its own for crypto, coins come from it alone (`bitcoin` is the CoinGecko coin, not
    Yahoo's BTC-USD), and it offers nothing else."""
    if settings.PRICE_PROVIDER == settings.CRYPTO_PRICE_PROVIDER:
        return True
    is_crypto = asset_class == "crypto"
    return is_crypto if provider == settings.CRYPTO_PRICE_PROVIDER else not is_crypto


def instrument_search(*, query: str, visible: Q) -> SearchAnswer:
    """Known instruments among `visible`, then each provider's answer where one is in; providers still
    searching are listed in `pending` (ask again), those whose search failed in `failed`."""
    query = query_normalize(query=query)
    answer = SearchAnswer(query=query, results=instruments_search_local(query=query, visible=visible))
    seen = {(result["provider"], result["symbol"]) for result in answer.results}
    for provider in search_providers():
        for hit in _provider_results(provider, query, answer):
            if not _serves(provider, hit["asset_class"]):
                continue
            if (hit["provider"], hit["symbol"]) not in seen:
                seen.add((hit["provider"], hit["symbol"]))
                answer.results.append(hit)
    return answer


def provider_search_run(*, provider: str, query: str) -> int:
    """Worker side: one provider search through its gateway, its answer (or failure) cached. Returns
    the number of hits."""
    gate = PriceService().gate(provider)
    try:
        hits = gate.call(lambda: gate.provider.search(query), [0])
    except ProviderError as error:
        logger.info("search: %s failed for %r: %s", provider, query, error)
        search_failure_set(provider=provider, query=query, error=f"{type(error).__name__}: {error}")
        return 0
    except Exception:
        search_claim_release(provider=provider, query=query)  # let the next asker try again
        raise
    search_answer_set(provider=provider, query=query, hits=hits)
    return len(hits)
