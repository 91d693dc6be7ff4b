"""The providers' search answers, kept in Redis a day per (provider, query), and what they say about a
symbol typed into a trade.

A query is searched on a provider at most once a day: the first asker claims it (a short `pending`
key) and a worker fetches it (prices/search.py); everyone else reads the answer. A failed search is
remembered for a few minutes only, so an outage neither hammers the provider nor outlives itself.
"""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from redis.exceptions import RedisError

from core.redis_store import redis_client, redis_key
from prices.providers import provider_get
from prices.providers.base import SearchHit

# Longest query worth a provider request: names and tickers are far shorter.
MAX_QUERY_LENGTH = 64
# A claimed search not answered within this long (a lost task, a dead worker) may be claimed again.
PENDING_SECONDS = 60
OK, FAILED = "ok", "failed"
# What Instrument.name holds.
INSTRUMENT_NAME_LENGTH = 200
# Searched without a wire (no request, no pacing, nothing to cache).
OFFLINE_PROVIDERS = {"simulated"}


def query_normalize(*, query: str | None) -> str:
    """The form a query is cached under (case and inner spaces do not make another query), or a
    ValidationError naming `q`."""
    normalized = " ".join((query or "").split()).lower()
    if not normalized:
        raise ValidationError({"q": "Type part of a ticker, name or coin id to search for."})
    if len(normalized) > MAX_QUERY_LENGTH:
        raise ValidationError({"q": f"Search for at most {MAX_QUERY_LENGTH} characters."})
    if "\x00" in normalized:  # Postgres refuses it in text: asked as it is, the search would fail with a 500
        raise ValidationError({"q": "Null characters are not allowed."})
    return normalized


def _key(kind: str, provider: str, query: str) -> str:
    # Hashed: a query is user text of any characters, a key should be bounded and plain.
    digest = hashlib.sha256(query.encode()).hexdigest()[:32]
    return redis_key("search", kind, provider, digest)


def search_answer_get(*, provider: str, query: str) -> dict | None:
    """`{"status": "ok", "hits": [...]}`, `{"status": "failed", "error": ...}`, or None when not searched
    (or Redis cannot say)."""
    if provider in OFFLINE_PROVIDERS:
        hits = provider_get(provider).search(query)
        return {"status": OK, "hits": [hit.as_dict() for hit in hits]}
    try:
        raw = redis_client().get(_key("answer", provider, query))
    except RedisError:
        return None
    return json.loads(raw) if raw else None


def search_answer_set(*, provider: str, query: str, hits: list[SearchHit]) -> None:
    body = json.dumps({"status": OK, "hits": [hit.as_dict() for hit in hits]})
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.set(_key("answer", provider, query), body, ex=settings.INSTRUMENT_SEARCH_TTL_SECONDS)
    pipe.delete(_key("pending", provider, query))
    # Each instrument's name as the provider gave it, whatever the query that found it: the name a new shared
    # instrument takes (search_name_get). By the provider's own id where it has one (CoinGecko lists many coins under
    # one ticker: ETH is Ethereum's and a bridged ether's), the first hit of each; cut to what Instrument.name holds.
    names: dict[str, str] = {}
    for hit in hits:
        name = hit.name.replace("\x00", "")[:INSTRUMENT_NAME_LENGTH]
        if name:
            names.setdefault((hit.provider_symbol or hit.symbol).upper(), name)
    if names:
        pipe.hset(_names_key(provider), mapping=names)
        pipe.expire(_names_key(provider), settings.INSTRUMENT_SEARCH_TTL_SECONDS)
    pipe.execute()


def _names_key(provider: str) -> str:
    return redis_key("search", "names", provider)


def search_name_get(*, provider: str, symbol: str, provider_symbol: str = "") -> str | None:
    """The name `provider`'s search gave the instrument lately (by its `provider_symbol` where it has one, else its
    `symbol`; None: no search answered with it, or Redis cannot say): the only name a new shared instrument takes,
    so that what one user types is never shown to another."""
    keys = [key.upper() for key in dict.fromkeys((provider_symbol, symbol)) if key]
    if provider in OFFLINE_PROVIDERS:
        names = {(hit.provider_symbol or hit.symbol).upper(): hit.name[:INSTRUMENT_NAME_LENGTH]
                 for hit in reversed(provider_get(provider).search(symbol)) if hit.name}
        return next((names[key] for key in keys if key in names), None)
    try:
        found = redis_client().hmget(_names_key(provider), keys)
    except RedisError:
        return None
    return next((name.decode() for name in found if name), None)


def search_failure_set(*, provider: str, query: str, error: str) -> None:
    body = json.dumps({"status": FAILED, "error": error[:300]})
    client = redis_client()
    client.set(_key("answer", provider, query), body, ex=settings.INSTRUMENT_SEARCH_FAILURE_TTL_SECONDS)
    client.delete(_key("pending", provider, query))


def search_claim(*, provider: str, query: str) -> bool:
    """True for the one caller who should have this query searched now: nobody has claimed it, and no
    answer is in."""
    client = redis_client()
    pending = _key("pending", provider, query)
    if not client.set(pending, "1", nx=True, ex=PENDING_SECONDS):
        return False
    # A worker stores its answer, then drops its claim: a caller that found no answer just before that
    # would otherwise claim the query again and have it searched twice.
    if client.exists(_key("answer", provider, query)):
        client.delete(pending)
        return False
    return True


def search_claim_release(*, provider: str, query: str) -> None:
    redis_client().delete(_key("pending", provider, query))


def hit_names(hit: dict, *, symbol: str, provider_symbol: str) -> bool:
    """Whether a search hit is the instrument `symbol` (or, for CoinGecko, the coin `provider_symbol`)."""
    if provider_symbol and hit.get("provider_symbol"):
        return hit["provider_symbol"].lower() == provider_symbol.lower()
    return hit.get("symbol", "").upper() == symbol.upper()


def symbol_unknown_check(*, symbol: str, provider: str, provider_symbol: str = "") -> None:
    """ValidationError naming `symbol` when `provider`'s search, asked for this very symbol (or coin id),
    answered without it. Anything short of such an answer lets the trade in (the workers verify it):
    not searched yet, the search failed (an outage never blocks trade entry), Redis unreachable."""
    answered = False
    for query in {symbol, provider_symbol} - {""}:
        answer = search_answer_get(provider=provider, query=query.lower())
        if answer is None or answer.get("status") != OK:
            continue
        if any(hit_names(hit, symbol=symbol, provider_symbol=provider_symbol) for hit in answer["hits"]):
            return
        answered = True
    if answered:
        raise ValidationError({"symbol": f"{symbol} is not an instrument {provider} knows: its search found no "
                                         f"such symbol. Search for the name and pick one of the results."})
