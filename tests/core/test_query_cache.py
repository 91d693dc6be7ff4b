"""query_cache against real Redis: exact counts, versioned invalidation, single flight, exact values."""

import logging
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core import kept_bytes
from core import query_cache as query_cache_module
from core.query_cache import cache_namespace_flush, cache_stats_get, cache_stats_history, query_cache
from core.redis_store import redis_client

VERSIONS: dict[int, int] = {}
CALLS: list[int] = []


@query_cache("test-owner", ttl=60, key=lambda *, owner_id: owner_id,
             version=lambda *, owner_id: VERSIONS.get(owner_id, 0))
def expensive(*, owner_id: int) -> dict:
    CALLS.append(owner_id)
    return {"owner": owner_id, "total": Decimal("1234.5600"), "tiny": Decimal("0.000000001"),
            "on": date(2024, 2, 29), "at": datetime(2024, 2, 29, 21, 0, tzinfo=UTC), "n": [1, 2.5, None]}


@query_cache("test-slow", ttl=60, key=lambda *, owner_id: owner_id, version=lambda *, owner_id: 0)
def slow(*, owner_id: int) -> int:
    CALLS.append(owner_id)
    time.sleep(0.3)
    return owner_id * 2


@query_cache("test-parts", ttl=60, key=lambda *, owner_id: owner_id,
             version=lambda *, owner_id: VERSIONS.get(owner_id, 0), parts=("small", "big"))
def answers(*, owner_id: int) -> dict[str, bytes]:
    CALLS.append(owner_id)
    time.sleep(0.2)
    return {"small": b'{"owner":%d}' % owner_id, "big": b"[" + b"0," * 50_000 + b"0]"}


@pytest.fixture(autouse=True)
def reset():
    VERSIONS.clear()
    CALLS.clear()


def test_hits_and_misses_are_counted_exactly():
    for _ in range(3):
        expensive(owner_id=1)
    expensive(owner_id=2)
    assert CALLS == [1, 2]
    stats = cache_stats_get()["test-owner"]
    assert (stats["hits"], stats["misses"], stats["hit_ratio"], stats["ttl_seconds"]) == (2, 2, 0.5, 60)
    minute = cache_stats_history(minutes=2)[-1]
    assert (minute["test-owner:hits"], minute["test-owner:misses"]) == (2, 2)


def test_values_round_trip_exactly():
    first = expensive(owner_id=7)
    second = expensive(owner_id=7)
    assert second == first
    assert second["total"] == Decimal("1234.5600") and str(second["total"]) == "1234.5600"
    assert second["tiny"] == Decimal("1E-9")
    assert second["on"] == date(2024, 2, 29) and isinstance(second["on"], date)
    assert second["at"] == datetime(2024, 2, 29, 21, 0, tzinfo=UTC)
    assert second["n"] == [1, 2.5, None]


def test_a_version_bump_invalidates():
    expensive(owner_id=3)
    expensive(owner_id=3)
    VERSIONS[3] = 1
    expensive(owner_id=3)
    assert CALLS == [3, 3]


def test_concurrent_misses_compute_once():
    results = []
    threads = [threading.Thread(target=lambda: results.append(slow(owner_id=21))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 8
    assert CALLS == [21]
    stats = cache_stats_get()["test-slow"]
    assert (stats["hits"], stats["misses"]) == (7, 1)


def test_flush_drops_a_namespace_only():
    expensive(owner_id=1)
    slow(owner_id=1)
    assert cache_namespace_flush(namespace="test-owner") == 1
    expensive(owner_id=1)
    slow(owner_id=1)
    assert CALLS == [1, 1, 1]


def test_redis_down_still_answers_and_logs_once(settings, caplog):
    settings.CACHES = {**settings.CACHES, "down": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}
    settings.QUERY_CACHE_ALIAS = "down"
    query_cache_module._down_logged_at = 0.0
    with caplog.at_level(logging.ERROR, logger="core.query_cache"):
        owners = [expensive(owner_id=5)["owner"] for _ in range(5)]
        small = answers.part("small", owner_id=5)
        alongside = answers.part_alongside("small", lambda pipe: pipe.smembers("any"), owner_id=5)
    assert owners == [5] * 5
    assert alongside == (b'{"owner":5}', None)  # nothing read alongside: the caller reads it (or not) itself
    assert CALLS == [5] * 7  # uncached, but correct
    assert small == b'{"owner":5}'
    assert sum("Redis unavailable" in r.getMessage() for r in caplog.records) == 1


def test_parts_are_one_hash_read_alone_or_whole(settings):
    # a miss through one part computes and stores all of them, once, whatever concurrent readers ask for
    read = []
    threads = [threading.Thread(target=lambda name=name: read.append((name, answers.part(name, owner_id=9))))
               for name in ("small", "big", "small", "big")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert CALLS == [9]
    assert sorted(read) == [("big", b"[" + b"0," * 50_000 + b"0]")] * 2 + [("small", b'{"owner":9}')] * 2

    client = redis_client(settings.QUERY_CACHE_ALIAS)
    key = "folio:qc:test-parts:9:v0:parts2"
    # the parts, and the id of the write that stored them (core/kept_bytes.py)
    assert (client.type(key), sorted(client.hkeys(key))) == (b"hash", [b"_written", b"big", b"small"])
    assert 0 < client.ttl(key) <= 60
    assert answers.part("small", owner_id=9) == b'{"owner":9}'  # a hit: the small one alone
    assert answers(owner_id=9) == {"small": b'{"owner":9}', "big": b"[" + b"0," * 50_000 + b"0]"}
    assert CALLS == [9]
    stats = cache_stats_get()["test-parts"]
    assert (stats["hits"], stats["misses"]) == (5, 1)

    # another read rides along, on a miss as on a hit
    client.sadd("folio:test:alongside", "a", "b")
    assert answers.part_alongside("small", lambda pipe: pipe.smembers("folio:test:alongside"), owner_id=9) == (
        b'{"owner":9}', [{b"a", b"b"}])
    assert answers.part_alongside("small", lambda pipe: pipe.smembers("folio:test:alongside"), owner_id=10) == (
        b'{"owner":10}', [{b"a", b"b"}])
    assert CALLS == [9, 10]

    VERSIONS[9] = 1  # a version bump: computed again
    assert answers.part("small", owner_id=9) == b'{"owner":9}'
    assert CALLS == [9, 10, 9]


@query_cache("test-derived", ttl=60, key=lambda *, owner_id: owner_id, version=lambda *, owner_id: 0,
             parts=("base", "other"))
def based(*, owner_id: int) -> dict[str, bytes]:
    CALLS.append(owner_id)
    return {"base": b"%d" % owner_id, "other": b"x"}


MADE: list[bytes] = []


def doubled(raw: bytes) -> bytes:
    MADE.append(raw)
    return raw * 2


def test_a_derived_part_is_made_by_the_miss_or_by_its_first_reader_and_stored_in_the_same_hash(settings):
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    # given answers cached before a module higher up derived a part from them
    assert based.part("base", owner_id=1) == b"1"
    based.derive("doubled", source="base", make=doubled, stats="test-derived-doubled")

    # its first reader makes it from the cached part (nothing computed again) and adds it to the hash
    assert based.part("doubled", owner_id=1) == b"11"
    assert based.part("doubled", owner_id=1) == b"11"
    assert (CALLS, MADE) == ([1], [b"1"])
    key = "folio:qc:test-derived:1:v0:parts2"
    assert sorted(client.hkeys(key)) == [b"_written", b"base", b"doubled", b"other"] and 0 < client.ttl(key) <= 60
    assert based(owner_id=1) == {"base": b"1", "other": b"x"}  # a whole read: the function's own parts

    # with nothing cached, a miss asked for it makes it with the others, once, and stores them together
    assert based.part("doubled", owner_id=2) == b"22"
    assert based.part("base", owner_id=2) == b"2"
    assert (CALLS, MADE) == ([1, 2], [b"1", b"2"])
    assert sorted(client.hkeys("folio:qc:test-derived:2:v0:parts2")) == [b"_written", b"base", b"doubled", b"other"]

    # a miss asked for another part makes nothing derived (its caller does not answer with it): its first reader does
    assert based.part("other", owner_id=6) == b"x"
    assert (CALLS, MADE) == ([1, 2, 6], [b"1", b"2"])
    assert sorted(client.hkeys("folio:qc:test-derived:6:v0:parts2")) == [b"_written", b"base", b"other"]
    assert based.part("doubled", owner_id=6) == b"66"
    assert (CALLS, MADE) == ([1, 2, 6], [b"1", b"2", b"6"])
    assert sorted(client.hkeys("folio:qc:test-derived:6:v0:parts2")) == [b"_written", b"base", b"doubled", b"other"]

    stats = cache_stats_get()
    assert (stats["test-derived-doubled"]["hits"], stats["test-derived-doubled"]["misses"]) == (1, 3)
    # the first readers of the derived part (owners 1 and 6) read its source, but no part of the function's own
    assert (stats["test-derived"]["hits"], stats["test-derived"]["misses"]) == (2, 3)

    # a hash that expired meanwhile is not made again by the derived part alone (it would have no expiry)
    assert client.eval(query_cache_module._DERIVED_ADD, 1, "folio:qc:test-derived:3:v0:parts2", "doubled", b"33",
                       "_written", b"an id") == 0
    assert not client.exists("folio:qc:test-derived:3:v0:parts2")

    # Redis down: made from the answers computed uncached
    settings.CACHES = {**settings.CACHES, "down": {
        "BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2}}}
    settings.QUERY_CACHE_ALIAS = "down"
    assert based.part("doubled", owner_id=4) == b"44"
    assert CALLS == [1, 2, 6, 4]


def test_a_write_replaces_the_hash_whole_never_keeping_an_earlier_writes_derived_part(settings):
    """Two writes of one version's answers (a second leader, the first one's wait timed out): the derived part made
    from the first write's source must not stay beside the second write's parts."""
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    based.derive("doubled", source="base", make=doubled, stats="test-derived-doubled")
    key = "folio:qc:test-derived:7:v0:parts2"
    assert based.part("doubled", owner_id=7) == b"77"  # written with its derived part
    client.hdel(key, "base")  # what the second leader finds: no answer of this version (a miss)
    assert based.part("base", owner_id=7) == b"7"
    assert sorted(client.hkeys(key)) == [b"_written", b"base", b"other"] and 0 < client.ttl(key) <= 60


@query_cache("test-clobbered", ttl=60, key=lambda *, owner_id: owner_id, version=lambda *, owner_id: 0,
             parts=("small",))
def clobbered(*, owner_id: int) -> dict[str, bytes]:
    """Makes its own write fail in Redis (a string where the hash goes: WRONGTYPE), as a Redis that failed
    between the read and the write would."""
    CALLS.append(owner_id)
    redis_client().set(f"folio:qc:test-clobbered:{owner_id}:v0:parts2", b"not a hash", ex=60)
    return {"small": b'{"owner":%d}' % owner_id}


def test_a_failed_write_still_answers_and_frees_the_claim(caplog):
    query_cache_module._down_logged_at = 0.0
    with caplog.at_level(logging.ERROR, logger="core.query_cache"):
        assert clobbered.part("small", owner_id=4) == b'{"owner":4}'  # the computed answer, not a 500
    assert sum("Redis unavailable" in r.getMessage() for r in caplog.records) == 1
    assert not redis_client().exists("folio:qc:test-clobbered:4:v0:parts2:lock")  # the next caller waits for nothing


@query_cache("test-overtaken", ttl=60, key=lambda *, owner_id: owner_id, version=lambda *, owner_id: 0,
             parts=("small",))
def overtaken(*, owner_id: int) -> dict[str, bytes]:
    """Its claim expires while it computes and another caller claims the key (a computation longer than
    LOCK_SECONDS): the write must not free that caller's claim."""
    CALLS.append(owner_id)
    redis_client().set(f"folio:qc:test-overtaken:{owner_id}:v0:parts2:lock", "another's", ex=60)
    return {"small": b'{"owner":%d}' % owner_id}


def test_the_write_stores_with_its_expiry_and_frees_only_its_own_claim():
    client = redis_client()
    assert expensive(owner_id=8)["owner"] == 8 and answers.part("small", owner_id=8) == b'{"owner":8}'
    for key in ("folio:qc:test-owner:8:v0", "folio:qc:test-parts:8:v0:parts2"):
        assert 0 < client.ttl(key) <= 60 and not client.exists(f"{key}:lock")
    assert overtaken.part("small", owner_id=9) == b'{"owner":9}'
    assert client.hget("folio:qc:test-overtaken:9:v0:parts2", "small") == b'{"owner":9}'
    assert client.get("folio:qc:test-overtaken:9:v0:parts2:lock") == b"another's"


WRITES: list[int] = []


@query_cache("test-kept", ttl=60, key=lambda *, owner_id: owner_id, version=lambda *, owner_id: 0,
             parts=("small", "big"))
def kept_answers(*, owner_id: int) -> dict[str, bytes]:
    WRITES.append(owner_id)
    return {"small": b"%d" % len(WRITES), "big": b"b" * 100_000 + b"%d" % len(WRITES)}


def _queued_read(client, name: str, owner_id: int):
    """One part_queue read of `name`: (the reader's answer, the pipeline's raw reply for it)."""
    pipe = client.pipeline(transaction=False)
    reader = kept_answers.part_queue(name, pipe, owner_id=owner_id)
    replies = pipe.execute()
    return reader(replies), replies[0]


def test_a_part_read_again_crosses_the_socket_only_when_the_hash_is_another_write(settings):
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    WRITES.clear()
    assert kept_answers.part("big", owner_id=1) == b"b" * 100_000 + b"1"  # computed, written with its id
    key = "folio:qc:test-kept:1:v0:parts2"
    written = client.hget(key, query_cache_module.WRITTEN_FIELD)
    assert written is not None and len(written) == 32

    # the first queued read brings the bytes; the next ones only Redis's word that the hash is that write still
    assert _queued_read(client, "big", 1) == (b"b" * 100_000 + b"1", [written, b"b" * 100_000 + b"1"])
    for _ in range(2):
        assert _queued_read(client, "big", 1) == (b"b" * 100_000 + b"1", 1)
    assert cache_stats_get()["test-kept"]["hits"] == 3

    # another write under the same key (the entry expired or was flushed, then computed again): read anew
    client.delete(key)
    assert _queued_read(client, "big", 1) == (None, [None, None])  # a miss: nothing kept is served
    assert kept_answers.part("big", owner_id=1) == b"b" * 100_000 + b"2"
    assert _queued_read(client, "big", 1)[0] == b"b" * 100_000 + b"2"
    assert _queued_read(client, "big", 1) == (b"b" * 100_000 + b"2", 1)
    assert WRITES == [1, 1]


def test_a_hash_of_an_older_folio_is_never_read_and_one_without_a_write_id_is_never_kept(settings):
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    # an older Folio's hash (no write id; its write over this one's would leave this one's id beside its bytes):
    # named without the format, so not this one's
    client.hset("folio:qc:test-kept:2:v0:parts", mapping={"small": b"old", "big": b"o" * 100_000})
    assert _queued_read(client, "big", 2) == (None, [None, None])
    # a hash of this format without an id (none is written so): read whole each time, nothing kept
    client.hset("folio:qc:test-kept:2:v0:parts2", mapping={"small": b"old", "big": b"o" * 100_000})
    for _ in range(2):
        assert _queued_read(client, "big", 2) == (b"o" * 100_000, [None, b"o" * 100_000])
    assert 2 not in WRITES


def test_a_small_part_is_sent_each_time():
    # confirming a kept one would cost as much as sending it
    assert kept_answers.part("small", owner_id=3) is not None
    client = redis_client()
    for _ in range(2):
        answer, reply = _queued_read(client, "small", 3)
        assert reply == [client.hget("folio:qc:test-kept:3:v0:parts2", "_written"), answer]


VERSIONS: dict[int, int] = {}


@query_cache("test-versions", ttl=60, key=lambda *, owner_id: owner_id,
             version=lambda *, owner_id: VERSIONS.get(owner_id, 0), parts=("small", "big"))
def versioned_answers(*, owner_id: int) -> dict[str, bytes]:
    return {"small": b"s", "big": b"v" * 100_000 + b"%d" % VERSIONS.get(owner_id, 0)}


def test_a_process_keeps_one_version_of_a_part_the_last_it_read(settings):
    # the data's version moves (a price refresh) and the answer is cached again under the new version's key: the
    # process keeps that one in place of the old one, not beside it
    kept_bytes.KEPT.clear()
    client = redis_client(settings.QUERY_CACHE_ALIAS)

    def read() -> tuple[bytes, object]:
        pipe = client.pipeline(transaction=False)
        reader = versioned_answers.part_queue("big", pipe, owner_id=5)
        replies = pipe.execute()
        return reader(replies), replies[0]

    for version in range(3):
        VERSIONS[5] = version
        answer = b"v" * 100_000 + b"%d" % version
        assert versioned_answers.part("big", owner_id=5) == answer
        assert read()[0] == answer and read() == (answer, 1)  # sent, then confirmed as kept
        assert (len(kept_bytes.KEPT.items), kept_bytes.KEPT.size) == (1, len(answer))
    # an older version read again (a request that read the version before the refresh): its bytes are sent, never
    # the newer one's served for it, and it is the one kept then
    VERSIONS[5] = 1
    answer, reply = read()
    assert answer == b"v" * 100_000 + b"1" and reply == [client.hget("folio:qc:test-versions:5:v1:parts2", "_written"),
                                                          answer]
    assert read() == (answer, 1) and len(kept_bytes.KEPT.items) == 1


def test_kept_bytes_keep_one_value_per_key_for_what_it_was_kept_for(monkeypatch):
    kept = kept_bytes.KeptBytes(limit=100, min_bytes=0)
    kept.put("answer", b"w1", b"old", size=3, of="v1")
    assert (kept.get("answer", of="v1"), kept.get("answer", of="v2"), kept.get("answer")) == ((b"w1", b"old"), None,
                                                                                                None)
    kept.put("answer", b"w2", b"newer", size=5, of="v2")
    assert (kept.get("answer", of="v1"), kept.get("answer", of="v2"), kept.size) == (None, (b"w2", b"newer"), 5)


def test_kept_bytes_stay_within_their_limit(monkeypatch):
    monkeypatch.setattr(kept_bytes, "KEPT_MIN_BYTES", 2)
    kept = kept_bytes.KeptBytes(limit=10)
    kept.put(("k", "a"), b"w1", b"12345", size=5)
    kept.put(("k", "b"), b"w1", b"123456", size=6)  # over the limit: the least recently read goes
    assert (kept.get(("k", "a")), kept.get(("k", "b")), kept.size) == (None, (b"w1", b"123456"), 6)
    kept.put(("k", "c"), b"w1", b"x" * 11, size=11)  # bigger than the whole limit: not kept at all
    kept.put(("k", "d"), b"w1", b"x", size=1)  # too small to be worth a check: not kept either
    kept.put(("k", "b"), b"w2", b"1234", size=4)  # another write of the same key replaces it
    assert (kept.get(("k", "c")), kept.get(("k", "d")), kept.get(("k", "b")), kept.size) == (
        None, None, (b"w2", b"1234"), 4)
    # a limit of 0 keeps nothing, even what says it weighs nothing (a store keeping small items too)
    none = kept_bytes.KeptBytes(limit=0, min_bytes=0)
    none.put("k", b"w", b"", size=0)
    assert (none.get("k"), len(none.items)) == (None, 0)


def test_no_answer_is_kept_with_kept_answers_mb_0(settings):
    settings.KEPT_ANSWERS_MB = 0
    kept_bytes.KEPT.clear()
    assert kept_answers.part("big", owner_id=4) is not None
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    for _ in range(2):  # the bytes every time: nothing kept to confirm
        answer, reply = _queued_read(client, "big", 4)
        assert reply == [client.hget("folio:qc:test-kept:4:v0:parts2", "_written"), answer]
    assert kept_bytes.KEPT.size == 0


def test_a_derived_part_is_added_only_to_the_write_its_source_came_from_and_never_replaced(settings):
    """A reader makes a missing derived part from the source it read; meanwhile another write replaces the hash
    (with its own derived part, which a process may have kept: core/kept_bytes.py). The reader's part, made
    from the older source, must not land in the newer write's hash."""
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    key = "folio:qc:test-derived:5:v0:parts2"
    assert based.part("base", owner_id=5) == b"5"

    landed = []

    def tripled_while_another_write_lands(raw: bytes) -> bytes:
        if not landed:  # once: this derivation stays registered on `based`
            landed.append(client.hset(key, mapping={"base": b"55", "tripled": b"555555", "_written": b"another"}))
        return raw * 3

    based.derive("tripled", source="base", make=tripled_while_another_write_lands, stats="test-derived-tripled")
    assert based.part("tripled", owner_id=5) == b"555"  # this reader's answer, from the source it read
    assert client.hget(key, "tripled") == b"555555"  # the other write's part stays: not replaced
    assert based.part("tripled", owner_id=5) == b"555555"
