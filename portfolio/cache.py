"""Per-portfolio data version in Redis: cache keys carry it, so invalidation is one INCR."""

import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)


def _version_key(portfolio_id: int) -> str:
    return f"portfolio:{portfolio_id}:version"


def portfolio_version_get(*, portfolio_id: int) -> int:
    try:
        return int(cache.get(_version_key(portfolio_id)) or 0)
    except Exception:  # Redis down: act as version 0; nothing is cached then anyway.
        logger.warning("Redis unavailable reading portfolio %s version", portfolio_id)
        return 0


def portfolio_version_bump(*, portfolio_id: int) -> int:
    """Make every cached read of the portfolio obsolete. Never fails a write over Redis."""
    key = _version_key(portfolio_id)
    try:
        # `add` seeds a missing key without racing a concurrent incr; no TTL so versions never go back.
        cache.add(key, 0, timeout=None)
        return cache.incr(key)
    except Exception:
        logger.warning("Redis unavailable bumping portfolio %s version", portfolio_id)
        return 0
