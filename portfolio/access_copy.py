"""Redis's copy of each portfolio's owner and data versions, which the warm dashboard reads check instead of
asking Postgres (portfolio/access.py). Postgres stays the system of record; a copy only ever says what
Postgres said, and says nothing rather than something older.

What a copy (one string per portfolio) holds:
- `owner:data_version:history_version`: the numbers, written by a reader that asked Postgres (once its caller
  is authenticated) or by a write at its commit; it lives until PORTFOLIO_ACCESS_CACHE_SECONDS have passed since
  Postgres said them (by Redis's clock). A portfolio that does not exist is `0:-1:-1` (owner 0 is nobody).
- `pending:owner:data_version`: a write in flight (a version bump, a portfolio created), written before its
  commit. Only numbers of that version or newer replace it — a reader's from after the commit, or the write's
  own at its commit (only while the mark is still its own: a later write's mark or a withdrawal wins). So a
  reader that asked Postgres before the commit cannot put the older numbers there, whenever it gets to Redis.
  It lives PENDING_SECONDS: a write rolled back leaves it that long (its portfolio's reads ask Postgres).
- `withdrawn` (before a save's or a deletion's commit) and `withdrawn:owner` (at it; owner 0 when deleted):
  a new owner perhaps, or none. Nothing replaces it; it lives PORTFOLIO_ACCESS_CACHE_SECONDS, after which any
  numbers read before the change are past their own lifetime.

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
_KEYS_PER_CALL = 1000

# ARGV: lifetime (ms), said (ms since the epoch), the numbers' text, their data version.
_SHARE = """
local clock = redis.call('TIME')
local left = math.min(tonumber(ARGV[1]),
                      tonumber(ARGV[2]) + tonumber(ARGV[1]) - (clock[1] * 1000 + math.floor(clock[2] / 1000)))
if left <= 0 then return 0 end
local version = tonumber(ARGV[4])
local held = redis.call('GET', KEYS[1])
if held then
  if string.sub(held, 1, 9) == 'withdrawn' then return 0 end
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
# ARGV: the mark's lifetime (ms), then one mark per key. A withdrawal stays.
_PENDING = """
for i, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if not (held and string.sub(held, 1, 9) == 'withdrawn') then
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
  end
end
return 0
"""
# ARGV: lifetime (ms), then per key the write's own mark and its numbers' text: set where the mark still is.
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
    """The owner a copy names, whatever its versions or mark (None: no copy, or `withdrawn` before a commit)."""
    if not copy:
        return None
    fields = copy.split(b":")
    if fields[0] in (b"pending", b"withdrawn"):
        fields = fields[1:]
    try:
        return int(fields[0]) if fields else None
    except ValueError:
        return None


def _lifetime_ms() -> int:
    return settings.PORTFOLIO_ACCESS_CACHE_SECONDS * 1000


def copy_share(portfolio_id: int, numbers: Numbers, *, said: float) -> None:
    """A reader's numbers, as Postgres said them at `said` (time.time() taken before asking), into the copy:
    unless a withdrawal, a write in flight to a newer version, or a newer version's numbers are there, and for
    what is left of the lifetime since `said`. Redis failing: the next read asks Postgres again."""
    with soft_fail("portfolio access copy not written", level=logging.DEBUG):
        redis_client(settings.QUERY_CACHE_ALIAS).eval(_SHARE, 1, copy_key(portfolio_id), _lifetime_ms(),
                                                      int(said * 1000), copy_text(numbers), numbers[1])


def copies_write(rows: Iterable[tuple[int, Numbers]]) -> None:
    """A write's new numbers (portfolio id, numbers), in its transaction: each copy marked pending now, and set
    to the numbers at commit where the mark is still this write's."""
    rows = [(portfolio_id, numbers, _pending_text(numbers)) for portfolio_id, numbers in rows]
    if not rows:
        return
    _run(_PENDING, [(portfolio_id, [mark]) for portfolio_id, _, mark in rows], head=[PENDING_SECONDS * 1000],
         what="marked pending")
    transaction.on_commit(lambda: _run(
        _COMMITTED, [(portfolio_id, [mark, copy_text(numbers)]) for portfolio_id, numbers, mark in rows],
        head=[_lifetime_ms()], what="written"))


def copies_withdraw(portfolio_id: int, *, owner_id: int) -> None:
    """A portfolio saved (`owner_id` its owner now) or deleted (0), in its transaction: its copy withdrawn now,
    and at commit withdrawn naming that owner (so that anyone else's read settles without asking Postgres)."""
    _withdraw(portfolio_id, b"withdrawn")
    transaction.on_commit(lambda: _withdraw(portfolio_id, b"withdrawn:%d" % owner_id))


def _pending_text(numbers: Numbers) -> bytes:
    return b"pending:%d:%d" % numbers[:2]


def _withdraw(portfolio_id: int, mark: bytes) -> None:
    with soft_fail("portfolio access copy not withdrawn", level=logging.WARNING):
        redis_client(settings.QUERY_CACHE_ALIAS).set(copy_key(portfolio_id), mark, px=_lifetime_ms())


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
