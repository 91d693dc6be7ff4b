"""Redis's copy of each portfolio's owner and data versions, which the warm dashboard reads check instead of
asking Postgres (portfolio/access.py). Postgres stays the system of record; a copy only ever says what
Postgres said, and says nothing rather than something older. A portfolio's owner never changes (the model
refuses it), so what a copy can fall behind on is only its versions — and whether it still exists.

What a copy (one string per portfolio) holds:
- `owner:data_version:history_version`: the numbers, written by a reader that asked Postgres (once its caller
  is authenticated) or by a write at its commit. A reader's lives until PORTFOLIO_ACCESS_CACHE_SECONDS have
  passed since it asked, by Redis's clock (read in the reader's pipeline: before asking Postgres, or after it
  and taken back by all the time since). A portfolio that does not exist is `0:-1:-1` (owner 0 is nobody).
- `pending:owner:data_version`: a write in flight (a version bump, a portfolio created or deleted), written
  before its commit. Only numbers of that version or newer replace it — a reader's from after the commit, or
  the write's own at its commit (only while the mark is still its own: a later write's mark wins). So a reader
  that asked Postgres before the commit cannot put the older numbers there, whenever it gets to Redis. It lives
  PENDING_SECONDS: a write rolled back leaves it that long (its owner's reads ask Postgres meanwhile).
- `deleted`: the portfolio is gone; nothing replaces it, for DELETED_SECONDS (ids are not handed out again).
- `held`: a fixture loaded over the row (any owner, any versions): nothing replaces it for PENDING_SECONDS,
  and every read asks Postgres meanwhile.

Every write is one Lua step (compare and set). Versions only ever grow; after a restore of Postgres, Redis is
emptied (docs/operations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from core.redis_store import redis_client, redis_key
from core.soft import soft_fail

# (owner, data version, history version)
Numbers = tuple[int, int, int]

ABSENT: Numbers = (0, -1, -1)
# Past this a write still in flight no longer holds the older numbers off (a longer transaction: they may then
# be copied before its commit, and its own copy at commit is not written; they expire within the lifetime).
PENDING_SECONDS = 60
DELETED_SECONDS = 24 * 3600
_DELETING = 2**62  # the version a deletion in flight holds readers off with: any
_KEYS_PER_CALL = 1000

# ARGV: lifetime (ms), when the reader asked (ms, Redis's clock), the numbers' text, their data version.
_SHARE = """
local clock = redis.call('TIME')
local left = math.min(tonumber(ARGV[1]),
                      tonumber(ARGV[2]) + tonumber(ARGV[1]) - (clock[1] * 1000 + math.floor(clock[2] / 1000)))
if left <= 0 then return 0 end
local version = tonumber(ARGV[4])
local held = redis.call('GET', KEYS[1])
if held then
  if held == 'deleted' or held == 'held' then return 0 end
  local pending = string.match(held, '^pending:[^:]*:([^:]*)$')
  if pending then
    if tonumber(pending) > version then return 0 end
  else
    local was = tonumber(string.match(held, '^[^:]*:([^:]*):'))
    if was and was >= version then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', left)
return 1
"""
# ARGV: the mark's lifetime (ms), then one mark per key. A deleted or held copy stays.
_PENDING = """
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held ~= 'deleted' and held ~= 'held' then
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
  end
end
return 0
"""
# ARGV: lifetime (ms), then per key the write's own mark and what replaces it: set where the mark still is.
_COMMITTED = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[2 * i] then
    redis.call('SET', key, ARGV[2 * i + 1], 'PX', ARGV[1])
  end
end
return 0
"""


def copy_key(portfolio_id: int) -> str:
    return redis_key("portfolio", portfolio_id, "access")


def copy_text(numbers: Numbers) -> bytes:
    return ":".join(map(str, numbers)).encode()


def copy_owner(copy: bytes | None) -> int | None:
    """The owner a copy names, whatever its versions (0: deleted; None: no copy, held, or unreadable)."""
    if copy == b"deleted":
        return 0
    if not copy or copy == b"held":
        return None
    fields = copy.split(b":")
    try:
        return int(fields[1] if fields[0] == b"pending" else fields[0])
    except (ValueError, IndexError):
        return None


def _lifetime_ms() -> int:
    return settings.PORTFOLIO_ACCESS_CACHE_SECONDS * 1000


def copy_share(portfolio_id: int, numbers: Numbers, *, asked_ms: int) -> None:
    """A reader's numbers into the copy, Postgres asked at `asked_ms` (Redis's TIME read before asking): unless
    the portfolio is deleted or held, a write in flight to a newer version or a newer version's numbers are
    there, and for what is left of the lifetime since then. Redis failing: the next read asks again."""
    with soft_fail("portfolio access copy not written", level=logging.DEBUG):
        redis_client(settings.QUERY_CACHE_ALIAS).eval(_SHARE, 1, copy_key(portfolio_id), _lifetime_ms(), asked_ms,
                                                      copy_text(numbers), numbers[1])


def copies_write(rows: Iterable[tuple[int, Numbers]]) -> None:
    """A write's new numbers (portfolio id, numbers), in its transaction: each copy marked pending now, and set
    to the numbers at commit where the mark is still this write's."""
    rows = [(portfolio_id, _pending_text(numbers[0], numbers[1]), copy_text(numbers)) for portfolio_id, numbers
            in rows]
    _marked_then_committed(rows, lifetime_ms=_lifetime_ms())


def copy_delete(portfolio_id: int, *, owner_id: int) -> None:
    """A portfolio deleted, in its transaction: its copy marked pending (no reader's numbers replace it) now,
    and deleted at commit."""
    _marked_then_committed([(portfolio_id, _pending_text(owner_id, _DELETING), b"deleted")],
                           lifetime_ms=DELETED_SECONDS * 1000)


def copy_hold(portfolio_id: int) -> None:
    """A fixture loaded over a portfolio's row: every read asks Postgres for PENDING_SECONDS."""
    with soft_fail("portfolio access copy not held", level=logging.WARNING):
        redis_client(settings.QUERY_CACHE_ALIAS).set(copy_key(portfolio_id), b"held", px=PENDING_SECONDS * 1000)


def _pending_text(owner_id: int, version: int) -> bytes:
    return b"pending:%d:%d" % (owner_id, version)


def _marked_then_committed(rows: list[tuple[int, bytes, bytes]], *, lifetime_ms: int) -> None:
    if not rows:
        return
    _run(_PENDING, [(portfolio_id, [mark]) for portfolio_id, mark, _ in rows], head=[PENDING_SECONDS * 1000],
         what="marked pending")
    transaction.on_commit(lambda: _run(_COMMITTED, [(portfolio_id, [mark, text]) for portfolio_id, mark, text in rows],
                                       head=[lifetime_ms], what="written"))


def _run(script: str, rows: list[tuple[int, list]], *, head: list, what: str) -> None:
    """`script` over the rows' keys, a thousand a call, in one round trip. Redis failing: logged (the copies
    expire within their lifetime; a mark not written leaves the older numbers to expire as well)."""
    with soft_fail(f"portfolio access: {len(rows)} copies not {what}", level=logging.WARNING):
        pipe = redis_client(settings.QUERY_CACHE_ALIAS).pipeline(transaction=False)
        for start in range(0, len(rows), _KEYS_PER_CALL):
            chunk = rows[start:start + _KEYS_PER_CALL]
            pipe.eval(script, len(chunk), *(copy_key(portfolio_id) for portfolio_id, _ in chunk), *head,
                      *(arg for _, args in chunk for arg in args))
        pipe.execute()
