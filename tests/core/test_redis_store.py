"""The one Redis client and key builder, against real Redis: claims debounce, compare-and-delete frees only
its own holder's key, soft_fail swallows and logs."""

import logging

from core.redis_store import claims_take, redis_client, redis_key, release_if_held
from core.soft import soft_fail


def test_keys_are_built_under_the_folio_prefix():
    assert redis_key("job", "abc", "errors") == "folio:job:abc:errors"
    assert redis_key("chart", 7, "scheduled") == "folio:chart:7:scheduled"


def key(item: int) -> str:
    return redis_key("test-claim", item)


def test_a_claim_is_won_once_within_its_window():
    assert claims_take(ids=[1, 2, 3], key=key, seconds=60) == [1, 2, 3]
    assert claims_take(ids=[2, 3, 4], key=key, seconds=60) == [4]
    assert 0 < redis_client().ttl(redis_key("test-claim", 4)) <= 60


def test_release_if_held_frees_only_the_holders_key():
    client = redis_client()
    client.set(redis_key("test-lock"), "mine")
    assert release_if_held(key=redis_key("test-lock"), value="theirs") is False
    assert client.get(redis_key("test-lock")) == b"mine"
    assert release_if_held(key=redis_key("test-lock"), value="mine") is True
    assert client.get(redis_key("test-lock")) is None


def test_soft_fail_logs_and_swallows(caplog):
    ran = []
    with caplog.at_level(logging.WARNING, logger="core.soft"), soft_fail("side work lost"):
        ran.append(1)
        raise ConnectionError("redis down")
    assert ran == [1]
    assert [r.getMessage() for r in caplog.records] == ["side work lost"]
