"""`query_cache`: cache an expensive read in Redis under its owner's data version.

    @query_cache("allocation", ttl=60, key=lambda *, portfolio: portfolio.pk,
                 version=lambda *, portfolio: portfolio.data_version)
    def portfolio_exposure_get(*, portfolio): ...

- Keys are `folio:qc:<namespace>:<key>:v<version>`: a write bumps the owner's version (one INCR),
  so stale entries are never read again and simply expire — no key scans.
- Single flight: on a miss one caller computes while concurrent callers of the same key wait for
  its result (bounded), so a burst of misses computes once. The leader's write and the release of its
  claim go in one round trip: a miss costs the read, the claim and that.
- Values round-trip exactly through JSON with tagged Decimals, dates and datetimes.
- Per-namespace hit and miss counters (totals, and per minute for the last two hours) feed
  /monitoring. They are counted in the process and written in one pipeline at most every
  QUERY_CACHE_STATS_FLUSH_SECONDS, so a hit costs one Redis round trip (the GET), not two.
- `dump`/`load` choose the stored form: exact JSON by default; a function that returns ready bytes
  (e.g. a rendered JSON answer) passes `raw_bytes` for both, and a hit returns those bytes undecoded.
- `parts`: a function returning several ready answers (`{part: bytes}`) has them stored as one Redis
  hash, and a caller reads only the part it sends (`fn.part(name, ...)`): one round trip either way;
  `fn.part_alongside(name, queue, ...)` sends the commands `queue(pipeline)` adds in that same round trip;
  `fn.part_queue(name, pipeline, ...)` only queues the read on a caller's pipeline (a miss computes nothing).
  Each write of a hash stores a fresh id beside its parts (WRITTEN_FIELD); a part that `part_queue` read is kept
  in the process with it, and the next `part_queue` of it asks Redis whether the hash is still that
  write's: its bytes cross the socket again only when it is not (core/kept_bytes.py: the dashboard's 200 KB
  answers, on every request).
  `fn.derive(name, source=, make=, stats=)` adds a part made from another by a module higher up the stack,
  stored in the same hash (made with the others by a miss asked for it, else by its first reader).
- Redis unavailable: the function still answers, uncached; the failure is logged once a minute,
  not once per call.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings

from core.batching import Batcher
from core.kept_bytes import KEPT, write_id
from core.redis_store import redis_client, redis_key, release_if_held, release_if_held_lua

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

STATS_KEY = redis_key("qc", "stats")
MINUTE_KEY = redis_key("qc", "minute", "{minute}")
MINUTE_RETENTION_SECONDS = 2 * 3600
LOCK_SECONDS = 30  # longer than any cached computation; a crashed leader frees it by expiry
WAIT_SECONDS = 10  # how long followers wait for the leader before computing themselves
NAMESPACES: dict[str, int] = {}  # namespace -> TTL, as declared by the decorators
# A derived part's stats name -> (the namespace whose hashes hold it, its field): flushed from those hashes.
DERIVED_PARTS: dict[str, tuple[str, str]] = {}
# The field of a parts hash holding the id of the write that made it (a new one each write): a part kept in the
# process is served again only while the hash is still that write's.
WRITTEN_FIELD = "_written"
# In the name of every parts hash: a Folio writing them without WRITTEN_FIELD (or with other rules) never shares one
# with this one, during a rolling deploy or after a rollback (its write over this one's hash would leave this
# one's id beside its bytes).
PARTS_FORMAT = 2


# --- exact JSON ----------------------------------------------------------------------------------


class _Encoder(json.JSONEncoder):
    def default(self, value: Any) -> Any:
        if isinstance(value, Decimal):
            return {"__decimal__": str(value)}
        if isinstance(value, datetime):
            return {"__datetime__": value.isoformat()}
        if isinstance(value, date):
            return {"__date__": value.isoformat()}
        if isinstance(value, set | frozenset | tuple):
            return list(value)
        return super().default(value)


def _decode(obj: dict) -> Any:
    if len(obj) == 1:
        ((tag, text),) = obj.items()
        if tag == "__decimal__":
            return Decimal(text)
        if tag == "__datetime__":
            return datetime.fromisoformat(text)
        if tag == "__date__":
            return date.fromisoformat(text)
    return obj


def dumps(value: Any) -> str:
    return json.dumps(value, cls=_Encoder, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_decode)


# --- Redis, failing soft --------------------------------------------------------------------------

_down_lock = threading.Lock()
_down_logged_at = 0.0
DOWN_LOG_INTERVAL = 60.0


def _redis_failed(error: Exception) -> None:
    global _down_logged_at
    with _down_lock:
        now = time.monotonic()
        if now - _down_logged_at >= DOWN_LOG_INTERVAL:
            _down_logged_at = now
            logger.error("query cache: Redis unavailable (%s); answering uncached", error)


def _redis_ok() -> None:
    global _down_logged_at
    if _down_logged_at:
        with _down_lock:
            if _down_logged_at:
                _down_logged_at = 0.0
                logger.warning("query cache: Redis reachable again")


def _counts_write(fields: list[str]) -> None:
    """The hits and misses (`<namespace>:<outcome>`) since the last write, one pipeline. A Redis error is
    the caller's (the cached read then answers uncached, as for any Redis failure)."""
    minute_key = MINUTE_KEY.format(minute=int(time.time() // 60))
    pipe = redis_client(settings.QUERY_CACHE_ALIAS).pipeline(transaction=False)
    for name, count in Counter(fields).items():
        pipe.hincrby(STATS_KEY, name, count)
        pipe.hincrby(minute_key, name, count)
    pipe.expire(minute_key, MINUTE_RETENTION_SECONDS)
    pipe.execute()


_counts: Batcher[str] = Batcher(interval=lambda: settings.QUERY_CACHE_STATS_FLUSH_SECONDS, flush=_counts_write)


def _count(namespace: str, outcome: str) -> None:
    _counts.add(f"{namespace}:{outcome}")


def raw_bytes(value: bytes) -> bytes:
    """The stored form of a value that is already bytes (both `dump` and `load`): no encoding, no decoding."""
    return value


# A kept part's read (KEYS[1] the hash; ARGV: WRITTEN_FIELD, the kept write's id, the fields to read): 1 while the
# hash is still that write's, else what an HMGET of WRITTEN_FIELD and the fields answers (as for a part not kept).
_KEPT_READ = ("if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 1 end "
              "return redis.call('HMGET', KEYS[1], ARGV[1], unpack(ARGV, 3))")


# --- the decorator --------------------------------------------------------------------------------


def query_cache(namespace: str, *, ttl: int, key: Callable[..., Any], version: Callable[..., Any],
                dump: Callable[[Any], str | bytes] = dumps, load: Callable[[bytes], Any] = loads,
                parts: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Cache the decorated function's result per `key(...)` and `version(...)` (both called with
    the function's arguments) for `ttl` seconds, stored as `dump(result)` and read back with `load`.

    With `parts`, the function returns `{part: bytes}` (ready bytes, stored as they are, one field each of
    a Redis hash written whole): `fn.part(name, ...)` reads one part alone — a small answer is not fetched
    with a big one beside it — and `fn(...)` all of them.
    """
    if WRITTEN_FIELD in parts:
        raise ValueError(f"{WRITTEN_FIELD} is the write's id in a parts hash, not a part")
    NAMESPACES[namespace] = ttl
    # name -> (the part it is made of, how, its statistics' namespace): see `derive` below.
    derivations: dict[str, tuple[str, Callable[[bytes], bytes], str]] = {}

    def queue_read(client, cache_key: str, part: str | None) -> Any:
        """The read's command on `client` (a pipeline: queued; a client: its raw reply)."""
        if not parts:
            return client.get(cache_key)
        if part in derivations:  # the derived part, what it is made of in case it is not there yet, and its write
            return client.hmget(cache_key, [part, derivations[part][0], WRITTEN_FIELD])
        if part is not None:
            return client.hget(cache_key, part)
        return client.hmget(cache_key, list(parts))  # the hash also holds derived parts: not those

    def replied(raw: Any, part: str | None) -> Any:
        if parts and part is None:
            return dict(zip(parts, raw, strict=True)) if raw[0] is not None else None
        if part in derivations:
            return None if raw[0] is None and raw[1] is None else raw
        return raw

    def read(client, cache_key: str, part: str | None, alongside: Callable[[Any], Any] | None = None) -> Any:
        """The cached raw value (None: a miss); with `alongside`, (that, the replies of the commands it
        queued on the same pipeline): one round trip for both."""
        if alongside is None:
            return replied(queue_read(client, cache_key, part), part)
        pipe = client.pipeline(transaction=False)
        queue_read(pipe, cache_key, part)
        alongside(pipe)
        raw, *others = pipe.execute()
        return replied(raw, part), others

    def derived_of(value: dict, part: str) -> dict:
        """The derived part a miss was asked for, made from the value it computed, to be stored with it. Only
        that one: a miss asked for another part (the dashboard's totals) would spend on a derivation its caller
        does not answer with; the first reader of one makes it then (derived_found). One whose making fails is
        left out, logged: its reader makes it again, and fails alone."""
        source, make, _ = derivations[part]
        try:
            return {part: make(value[source])}
        except Exception:
            logger.exception("query cache: %s could not be made from %s's %s", part, namespace, source)
            return {}

    def pick(value: dict, part: str | None) -> Any:
        """What the caller asked for of a value computed here."""
        if not parts:
            return value
        if part is None:
            return {name: value[name] for name in parts}
        if part in value:
            return value[part]
        source, make, _ = derivations[part]
        return make(value[source])

    def write(client, cache_key: str, value: Any, token: str | None) -> None:
        """Store the value and, when we hold the key's claim (`token`), release it: one round trip, one command
        (_WRITE: a MULTI pipeline of the same commands cost the miss about twice the client CPU)."""
        if parts:
            stored = [item for name in (*parts, *derivations) if name in value for item in (name, value[name])]
            stored += [WRITTEN_FIELD, write_id()]  # what a part kept in a process is checked against
        else:
            stored = [dump(value)]
        client.eval(_WRITE, 2, cache_key, f"{cache_key}:lock", ttl, token or "", "hash" if parts else "string",
                    *stored)

    def decoded(raw: Any) -> Any:
        return raw if parts else load(raw)

    def key_of(args: tuple, kwargs: dict) -> str:
        return redis_key("qc", namespace, key(*args, **kwargs), f"v{version(*args, **kwargs)}",
                         *([f"parts{PARTS_FORMAT}"] if parts else []))

    def decorator(fn: F) -> F:
        def cached(part: str | None, args: tuple, kwargs: dict, alongside: Callable[[Any], Any] | None = None) -> Any:
            others = None
            try:
                client = redis_client(settings.QUERY_CACHE_ALIAS)
                cache_key = key_of(args, kwargs)
                raw = read(client, cache_key, part, alongside)
                if alongside is not None:
                    raw, others = raw
                if part in derivations and raw is not None:
                    return derived_found(client, cache_key, part, raw), others
                if raw is not None:
                    return hit(part, raw), others
                token: str | None = uuid.uuid4().hex
                leader = client.set(f"{cache_key}:lock", token, nx=True, ex=LOCK_SECONDS)
            except Exception as error:  # Redis down or misbehaving: correct answers, uncached
                _redis_failed(error)
                return pick(fn(*args, **kwargs), part), others
            _redis_ok()
            if not leader:
                waited = _wait_for(client, cache_key, lambda: read(client, cache_key, part))
                if part in derivations and waited is not None:
                    return derived_found(client, cache_key, part, waited), others
                if waited is not None:
                    return hit(part, waited), others
                token = None  # the claim is another's (or expired): nothing of ours to release
            try:
                value = fn(*args, **kwargs)
                if part in derivations:
                    value = {**value, **derived_of(value, part)}
            except BaseException:
                if token is not None:
                    _release(client, cache_key, token)
                raise
            try:
                write(client, cache_key, value, token)  # our claim released in the same round trip
            except Exception as error:  # Redis gone since the read: the answer stands, uncached
                _redis_failed(error)
            _count(namespace, "misses")
            if part in derivations:
                _count(derivations[part][2], "misses")
            return pick(value, part), others

        def hit(part: str | None, raw: Any) -> Any:
            """What a read found, counted as a hit: the value, or a derived part as stored (`raw` being its
            (stored, source) pair, stored made)."""
            _redis_ok()
            if part in derivations:
                _count(derivations[part][2], "hits")
                return raw[0]
            _count(namespace, "hits")
            return decoded(raw)

        def derived_found(client, cache_key: str, part: str, raw: list) -> bytes:
            """A derived part read (its hash is there): as stored, or made now from its source part and
            added to the hash — only while the hash is still the write that source came from, and only if no
            one added it meanwhile: never a hash without its expiry, never a part made from another write's
            source, never a part replaced under a process that kept it (core/kept_bytes.py)."""
            stored, source, written = raw
            if stored is not None:
                return hit(part, raw)
            _redis_ok()
            # Counted as the derived part's miss alone: its source's read serves no reader of the function's parts.
            made = derivations[part][1](source)
            try:
                client.eval(_DERIVED_ADD, 1, cache_key, part, made, WRITTEN_FIELD, written or b"")
            except Exception as error:
                _redis_failed(error)
            _count(derivations[part][2], "misses")
            return made

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return cached(None, args, kwargs)[0]

        if parts:
            wrapper.part = lambda name, *args, **kwargs: cached(name, args, kwargs)[0]  # type: ignore[attr-defined]
            # (the part, the replies of what `alongside(pipeline)` queued — None when Redis failed): another
            # read the caller needs anyway rides in the same round trip.
            wrapper.part_alongside = (  # type: ignore[attr-defined]
                lambda name, alongside, *args, **kwargs: cached(name, args, kwargs, alongside))

            def derive(name: str, *, source: str, make: Callable[[bytes], bytes], stats: str) -> None:
                """Add a part made from the part `source` by `make` (bytes to bytes), by a module the decorated
                function does not know (one higher up the stack): stored in the same hash, with the same
                version and expiry, by a miss asked for it (made with the others: no round trips of its own), or
                by its first reader when they were made without it (by a miss asked for another part, before it
                was derived, or in a process that does not derive it: one round trip more, the write). Read it
                with `fn.part(name, ...)`; its hits and misses are counted as `stats`."""
                derivations[name] = (source, make, stats)
                NAMESPACES[stats] = ttl
                DERIVED_PARTS[stats] = (namespace, name)

            wrapper.derive = derive  # type: ignore[attr-defined]

            def part_queue(name: str, pipe, *args: Any, **kwargs: Any) -> Callable[[list], Any]:
                """Queue the read of one part on `pipe` (a pipeline the caller executes) and return the reader
                of the pipeline's replies: the part on a hit (counted), None on a miss. Read only — a miss
                computes nothing (its caller may not be entitled to a computation yet): `fn.part` then reads,
                computes and counts it. A part this process read before is kept (core/kept_bytes.py): Redis is
                asked whether the hash is still the write it came from and sends the part only if not."""
                index = len(pipe)
                cache_key = key_of(args, kwargs)
                # One kept per answer, whatever its version: the newest read replaces the older ones (KeptBytes).
                slot = ("qc", namespace, key(*args, **kwargs), name)
                fields = [name, derivations[name][0]] if name in derivations else [name]
                kept = KEPT.get(slot, of=cache_key)
                if kept is None:
                    pipe.hmget(cache_key, [WRITTEN_FIELD, *fields])
                else:
                    pipe.eval(_KEPT_READ, 1, cache_key, WRITTEN_FIELD, kept[0], *fields)

                def reader(replies: list) -> Any:
                    reply = replies[index]
                    if not isinstance(reply, list):  # 1: still the write kept here
                        return hit(name, kept[1])
                    written, *found = reply
                    raw = replied(found if name in derivations else found[0], name)
                    if raw is None or (name in derivations and raw[0] is None):  # a derived part not made yet
                        return None  # fn.part makes it
                    if written is not None:  # (every hash of PARTS_FORMAT has one: never kept without)
                        kept_raw, size = ([raw[0], None], len(raw[0])) if name in derivations else (raw, len(raw))
                        KEPT.put(slot, written, kept_raw, size=size, of=cache_key)
                    return hit(name, raw)

                return reader

            wrapper.part_queue = part_queue  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


# The leader's write (ARGV: ttl, its claim's token or "", "hash" and the parts' fields and values, or "string" and
# the value): a script runs whole, so a hash never stands without its expiry. A hash is replaced whole: a derived
# part an earlier write of the same key had (made from that write's source) never stays beside this write's parts
# (a key of another type is left to fail the write, as a Redis failing between the read and the write would).
# The claim is released first: a script's commands before an error stand, so a write Redis refuses (the key holds
# another type) still frees it.
_WRITE = (f"local released = 0 if ARGV[2] ~= '' then {release_if_held_lua('KEYS[2]', 'ARGV[2]')} end "
          "if ARGV[3] == 'hash' then if redis.call('TYPE', KEYS[1]).ok == 'hash' then redis.call('DEL', KEYS[1]) end "
          "redis.call('HSET', KEYS[1], unpack(ARGV, 4)) "
          "redis.call('EXPIRE', KEYS[1], ARGV[1]) else redis.call('SET', KEYS[1], ARGV[4], 'EX', ARGV[1]) end "
          "return released")

# Add a derived part (ARGV: its field, its bytes, WRITTEN_FIELD, the id of the write its source was read from) only
# while the hash is that write (a hash gone: HSET alone would make one without an expiry) and only if it is missing.
_DERIVED_ADD = ("if ARGV[4] ~= '' and redis.call('HGET', KEYS[1], ARGV[3]) == ARGV[4] then "
                "return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) end return 0")


def _release(client, cache_key: str, token: str) -> None:
    """Free our claim when the value was not written (its computation or the write failed): the next
    caller computes at once instead of waiting for the claim to expire."""
    try:
        release_if_held(key=f"{cache_key}:lock", value=token, client=client)
    except Exception as error:
        _redis_failed(error)


def _wait_for(client, cache_key: str, read: Callable[[], Any]) -> Any:
    """The leader's result once it lands, or None if it does not come in time (then compute too)."""
    deadline = time.monotonic() + WAIT_SECONDS
    pause = 0.005
    try:
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
            raw = read()
            if raw is not None:
                return raw
            if not client.exists(f"{cache_key}:lock"):
                return read()  # the leader gave up (error): None, compute ourselves
    except Exception as error:  # Redis gone while we waited: compute ourselves, uncached
        _redis_failed(error)
    return None


# --- statistics and flushing ----------------------------------------------------------------------


def cache_stats_get() -> dict[str, dict]:
    """Hits, misses and hit ratio per namespace since the counters were last reset."""
    raw = {k.decode(): int(v) for k, v in redis_client(settings.QUERY_CACHE_ALIAS).hgetall(STATS_KEY).items()}
    names = sorted(set(NAMESPACES) | {field.rsplit(":", 1)[0] for field in raw})
    stats = {}
    for name in names:
        hits, misses = raw.get(f"{name}:hits", 0), raw.get(f"{name}:misses", 0)
        total = hits + misses
        stats[name] = {"hits": hits, "misses": misses, "hit_ratio": round(hits / total, 4) if total else None,
                       "ttl_seconds": NAMESPACES.get(name)}
    return stats


def cache_stats_history(*, minutes: int = 60) -> list[dict]:
    """Per-minute hits and misses per namespace, oldest first, for the last `minutes` minutes."""
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    now = int(time.time() // 60)
    pipe = client.pipeline(transaction=False)
    for minute in range(now - minutes + 1, now + 1):
        pipe.hgetall(MINUTE_KEY.format(minute=minute))
    history = []
    for minute, raw in zip(range(now - minutes + 1, now + 1), pipe.execute(), strict=True):
        history.append({"minute": minute * 60, **{k.decode(): int(v) for k, v in raw.items()}})
    return history


def cache_namespace_flush(*, namespace: str) -> int:
    """Delete a namespace's entries (a SCAN of its prefix: an operator's action, not a hot path); a derived part's
    (`chart_live`) from the hashes of the namespace holding it."""
    client = redis_client(settings.QUERY_CACHE_ALIAS)
    if namespace in DERIVED_PARTS:
        holder, field_name = DERIVED_PARTS[namespace]
        return sum(client.hdel(key, field_name) for key in client.scan_iter(match=redis_key("qc", holder, "*"),
                                                                           count=1000))
    deleted = 0
    batch = []
    for key in client.scan_iter(match=redis_key("qc", namespace, "*"), count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted
