"""Fixtures of the portfolio tests."""

import pytest

from core.redis_store import redis_client


@pytest.fixture
def redis_round_trips(settings, monkeypatch):
    """The Redis round trips of the code run after it: each takes a connection from the pool (a command, or a
    whole pipeline). Statistics are kept in the process meanwhile, as in production (one write a second)."""
    settings.REQUEST_TIMING_FLUSH_SECONDS = settings.QUERY_CACHE_STATS_FLUSH_SECONDS = 3600
    pool = redis_client().connection_pool
    taken = []
    get_connection = pool.get_connection
    monkeypatch.setattr(pool, "get_connection",
                        lambda *args, **kwargs: taken.append(1) or get_connection(*args, **kwargs))
    return taken
