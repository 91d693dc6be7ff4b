"""Who owns a portfolio and its data version, for the dashboard's hot reads, cached briefly in Redis.

The three dashboard endpoints need only this to find their cached answers; reading it from Redis
saves a Postgres round trip on every request. Entries live PORTFOLIO_ACCESS_CACHE_SECONDS and are
kept true by the writers:

- every data-version bump drops the entry as it is made and raises the cached version once it
  commits (portfolio/cache.py), through a script that only ever raises it: a reader that read the
  row before the commit and writes after it cannot bring the older version back;
- a deleted portfolio leaves a tombstone (no owner, a version above any real one) that no reader
  can overwrite until it expires, so it answers 404 at once;
- a portfolio saved (renamed, given to another owner) is forgotten, read again from Postgres.

Postgres stays the system of record: Redis unreachable or an entry gone, the row is read.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from django.conf import settings
from django_redis import get_redis_connection

from portfolio.models import Portfolio

logger = logging.getLogger(__name__)

ACCESS_KEY = "folio:portfolio:{portfolio_id}:access"
NO_OWNER = 0
TOMBSTONE_VERSION = 2**62  # above any version a portfolio reaches: a deleted portfolio stays deleted
# Per key: owner, version. Writes only when the entry is absent or older; refreshes the TTL then.
_RAISE = """
for i, key in ipairs(KEYS) do
  local current = redis.call('HGET', key, 'v')
  if not current or tonumber(current) < tonumber(ARGV[2 * i]) then
    redis.call('HSET', key, 'o', ARGV[2 * i - 1], 'v', ARGV[2 * i])
    redis.call('EXPIRE', key, ARGV[#ARGV])
  end
end
return 0
"""
SCRIPT_CHUNK = 500


class PortfolioAccess(NamedTuple):
    """What a request needs to find a portfolio's cached answers: `pk` and `data_version` as the
    model names them, so it serves wherever only those two are read."""

    pk: int
    owner_id: int
    data_version: int


def _key(portfolio_id: int) -> str:
    return ACCESS_KEY.format(portfolio_id=portfolio_id)


def portfolio_access_get(*, user_id: int | None, portfolio_id: int) -> PortfolioAccess | None:
    """The portfolio's owner and version if `user_id` owns it; None otherwise (as if it did not exist)."""
    access = _cached(portfolio_id)
    if access is None:
        row = Portfolio.objects.filter(pk=portfolio_id).values_list("owner_id", "data_version").first()
        if row is None:
            return None
        access = PortfolioAccess(portfolio_id, *row)
        portfolio_access_versions_raise(rows=[access])
    return access if user_id is not None and access.owner_id == user_id else None


def _cached(portfolio_id: int) -> PortfolioAccess | None:
    try:
        owner, version = get_redis_connection("default").hmget(_key(portfolio_id), "o", "v")
    except Exception:  # Redis down: Postgres answers
        logger.debug("portfolio access cache not read", exc_info=True)
        return None
    if owner is None or version is None:
        return None
    return PortfolioAccess(portfolio_id, int(owner), int(version))


def portfolio_access_versions_raise(*, rows: list[PortfolioAccess]) -> None:
    """Record these (portfolio, owner, version) where the cache has none or an older one."""
    try:
        client = get_redis_connection("default")
        for start in range(0, len(rows), SCRIPT_CHUNK):
            chunk = rows[start:start + SCRIPT_CHUNK]
            args = [value for row in chunk for value in (row.owner_id, row.data_version)]
            client.eval(_RAISE, len(chunk), *[_key(row.pk) for row in chunk], *args,
                        settings.PORTFOLIO_ACCESS_CACHE_SECONDS)
    except Exception:
        # Redis down: an entry it still holds keeps its older version until it expires; the reads it
        # serves are then as old as that entry at most.
        logger.warning("portfolio access cache: %d versions not raised (Redis unavailable)", len(rows),
                       exc_info=True)


def portfolio_access_deleted(*, portfolio_id: int) -> None:
    portfolio_access_versions_raise(rows=[PortfolioAccess(portfolio_id, NO_OWNER, TOMBSTONE_VERSION)])


def portfolio_access_forget(*, portfolio_ids: list[int]) -> None:
    """Drop these entries: the next read takes the row from Postgres."""
    try:
        client = get_redis_connection("default")
        for start in range(0, len(portfolio_ids), SCRIPT_CHUNK):
            client.delete(*[_key(pk) for pk in portfolio_ids[start:start + SCRIPT_CHUNK]])
    except Exception:
        logger.warning("portfolio access cache: %d entries not forgotten (Redis unavailable)", len(portfolio_ids),
                       exc_info=True)
