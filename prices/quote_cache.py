"""Market-aware cache of latest quotes in Redis.

A cached quote means "fresh": while the instrument's market is open it lives QUOTE_TTL_OPEN_SECONDS;
while the market is closed nothing can change before the next open, so it lives until then. A
refresh skips instruments whose quote is still cached, so closed markets cost no provider calls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from core.redis_store import redis_client, redis_key
from prices.market_calendar import market_is_open, seconds_until_open
from prices.models import Instrument
from prices.providers.base import Quote

logger = logging.getLogger(__name__)


def _key(symbol: str) -> str:
    return redis_key("quote", symbol)


def quote_ttl_seconds(*, mic: str, now: datetime) -> int:
    """How long a quote taken at `now` stays fresh."""
    open_ttl = settings.QUOTE_TTL_OPEN_SECONDS
    if market_is_open(mic=mic, now=now):
        return open_ttl
    return max(open_ttl, int(seconds_until_open(mic=mic, now=now)))


def quotes_cache_set(*, quotes: dict[Instrument, Quote], now: datetime) -> None:
    pipe = redis_client().pipeline(transaction=False)
    for instrument, quote in quotes.items():
        payload = {
            "price": str(quote.price),
            "previous_close": None if quote.previous_close is None else str(quote.previous_close),
            "as_of": quote.as_of.isoformat(),
            "currency": quote.currency,
            "source": instrument.provider,
        }
        ttl = quote_ttl_seconds(mic=instrument.exchange_mic, now=now)
        pipe.set(_key(instrument.symbol), json.dumps(payload), ex=ttl)
    pipe.execute()


def quotes_cache_get(*, symbols: Iterable[str]) -> dict[str, dict]:
    """Fresh cached quotes by symbol (prices as Decimal); symbols without one are absent."""
    symbols = list(symbols)
    if not symbols:
        return {}
    raw = redis_client().mget([_key(symbol) for symbol in symbols])
    fresh = {}
    for symbol, value in zip(symbols, raw, strict=True):
        if value is None:
            continue
        payload = json.loads(value)
        payload["price"] = Decimal(payload["price"])
        if payload["previous_close"] is not None:
            payload["previous_close"] = Decimal(payload["previous_close"])
        fresh[symbol] = payload
    return fresh
