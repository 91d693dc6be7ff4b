"""Who owns a portfolio and its data version: all the dashboard's hot reads need them to find their cached
answers. Postgres holds them (the versions are bumped in the transaction of every write: portfolio/cache.py);
a primary-key probe reads them without building a model instance (a statement prepared once per connection,
core/postgres/prepared.py).

A warm read need not ask Postgres each time: a copy of the three numbers lives in Redis, and each web
process remembers what it last read from Postgres for a portfolio. The warm read (portfolio/api/views.py)
builds its answer's key from what the process remembers and reads that copy in the same pipeline as the
token and the answer: the copy saying the same confirms the answer read; saying anything else (a newer
version, another owner, nothing, or withdrawn) sends the request to Postgres and the ordinary path.

How the copy stays true:
- every version bump writes the new numbers when it is made and again once committed (portfolio/cache.py);
  a copy is only ever replaced by a newer version's (one Lua step compares them), so a reader that probed
  Postgres just before a write cannot put the older numbers back after it; and a copy lives only until the
  lifetime has passed since Postgres said its numbers (by Redis's clock), so older numbers cannot come back
  either once the write's own copy or withdrawal has expired, however long their reader stalled;
- a reader writes a copy (and its process remembers the numbers) only once its caller is authenticated:
  a request that is refused writes nothing;
- saving or deleting a portfolio (a new owner, however done) withdraws the copy for
  PORTFOLIO_ACCESS_CACHE_SECONDS, then and again at commit: until it expires every read asks Postgres;
- a portfolio that does not exist has a copy too (owner 0, version -1), and a copy naming another owner
  settles a read as 404 whatever its versions, so that another user's portfolio and a missing one cost a
  request the same, writes to it or not; creating it replaces that copy (version 0 is newer). (What a
  process's first request for an id can still tell by its time, a fraction of a millisecond: whether anyone
  read that id in the last few seconds.)
- a writer's copy lives from when it read the numbers in its transaction, not from when it reaches Redis:
  written late after the commit, it expires no later than one written on time;
- the copy expires PORTFOLIO_ACCESS_CACHE_SECONDS after Postgres said its numbers (the web host's clock and
  Redis's are taken to agree to well under that, as NTP keeps them). That bounds the one case Redis cannot
  be told: a write made while Redis was unreachable from the writer shows on the warm reads at most that
  long after it (Postgres stays right; the ordinary path and sessions always ask it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import NamedTuple

from django.conf import settings
from django.http import Http404

from core.postgres.prepared import PreparedQuery
from core.redis_store import redis_client, redis_key
from core.soft import soft_fail
from portfolio.models import Portfolio
from portfolio.selectors import portfolio_get

# By id alone, the owner compared by portfolio_access_owned: the same probe serves a read made before the request
# is authenticated (portfolio/api/views.py, WarmReadApi), which checks the owner once it knows the user.
_VERSION = PreparedQuery(name="folio_portfolio_access", columns=(int, int, int),
                         sql=f"SELECT owner_id, data_version, history_version FROM {Portfolio._meta.db_table} "
                             "WHERE id = %s")


class PortfolioAccess(NamedTuple):
    """What a request needs to find a portfolio's cached answers: `pk`, `data_version` and
    `history_version` (the chart's) as the model names them, so it serves wherever only those are read."""

    pk: int
    owner_id: int
    data_version: int
    history_version: int = 0


def portfolio_access_get(*, user_id: int | None, portfolio_id: int) -> PortfolioAccess | None:
    """The portfolio's id and version if `user_id` owns it; None otherwise (as if it did not exist)."""
    if user_id is None:
        return None
    return portfolio_access_owned(portfolio_access_probe(portfolio_id=portfolio_id), user_id=user_id)


def portfolio_access_probe(*, portfolio_id: int) -> PortfolioAccess | None:
    """The portfolio's owner and versions whoever asks (None: no such portfolio), from Postgres. Nothing of it,
    nor anything read with it, may reach a caller before portfolio_access_owned has compared its owner with
    the caller."""
    row = _VERSION.fetchone([portfolio_id])
    return PortfolioAccess(portfolio_id, *row) if row else None


# --- the copy in Redis, and what each process last read -------------------------------------------------

# What no portfolio has: the copy of one that does not exist (owner 0 is nobody; any real version is newer).
_ABSENT = (0, -1, -1)
_WITHDRAWN = b"withdrawn"
# Writes each copy (KEYS) unless a newer version's or a withdrawal is there (ARGV: the lifetime in ms, the
# withdrawn mark, when Postgres said the numbers (ms since the epoch), then a copy and its data version per
# key). A copy lives until the lifetime has passed since Postgres said it, by Redis's clock: numbers read before
# a change can never be written after the change's own copy or withdrawal expired (they would be written for
# less than nothing), however long the writer of the older numbers stalled. Versions only ever grow (after a
# restore of Postgres Redis is emptied).
_SHARE = """
local lifetime, withdrawn, said = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local clock = redis.call('TIME')
local left = math.min(lifetime, said + lifetime - (tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)))
if left <= 0 then return 0 end
for i, key in ipairs(KEYS) do
  local text, version = ARGV[2 * i + 2], tonumber(ARGV[2 * i + 3])
  local held = redis.call('GET', key)
  local older = held == withdrawn
  if held and not older then
    local was = tonumber(string.match(held, '^[^:]*:([^:]*):'))
    older = was ~= nil and was >= version
  end
  if not older then redis.call('SET', key, text, 'PX', left) end
end
return 0
"""
_SHARE_KEYS_PER_CALL = 1000

# Per process: portfolio id → the numbers last read from Postgres (absent ones too), for authenticated callers
# only. Bounded: past the limit the oldest entry goes (it then costs one probe more).
_REMEMBERED: dict[int, tuple[int, int, int]] = {}
_REMEMBERED_MAX = 10_000
_REMEMBERED_LOCK = threading.Lock()


def _copy_key(portfolio_id: int) -> str:
    return redis_key("portfolio", portfolio_id, "access")


def _copy_text(numbers: tuple[int, int, int]) -> bytes:
    return ":".join(map(str, numbers)).encode()


def _numbers(access: PortfolioAccess | None) -> tuple[int, int, int]:
    return _ABSENT if access is None else (access.owner_id, access.data_version, access.history_version)


def _access(portfolio_id: int, numbers: tuple[int, int, int]) -> PortfolioAccess | None:
    return None if numbers == _ABSENT else PortfolioAccess(portfolio_id, *numbers)


def _share_queue(client, accesses: list[tuple[int, tuple[int, int, int]]], *, said: float) -> None:
    """Queue on `client` (a pipeline) or make at once the copies of (portfolio id, numbers) pairs that Postgres
    said at `said` (time.time())."""
    for start in range(0, len(accesses), _SHARE_KEYS_PER_CALL):
        chunk = accesses[start:start + _SHARE_KEYS_PER_CALL]
        args = [settings.PORTFOLIO_ACCESS_CACHE_SECONDS * 1000, _WITHDRAWN, int(said * 1000)]
        for _, numbers in chunk:
            args += [_copy_text(numbers), numbers[1]]
        client.eval(_SHARE, len(chunk), *(_copy_key(portfolio_id) for portfolio_id, _ in chunk), *args)


class AccessProbed(NamedTuple):
    """What Postgres said of a portfolio (`access`, None: no such portfolio) and when (time.time(), taken before
    asking): for portfolio_access_learned, once the caller is authenticated."""

    access: PortfolioAccess | None
    said: float


class AccessRead(NamedTuple):
    """What a warm read knew before authentication: `access` (what its answer was read for: as remembered, or
    as Postgres said now), `probed` (Postgres was asked: to be learned) and where Redis's copy is in the
    pipeline's replies (None: not read, Postgres was asked)."""

    access: PortfolioAccess | None
    probed: AccessProbed | None
    copy_index: int | None


def portfolio_access_read(pipe, *, portfolio_id: int) -> AccessRead:
    """For a warm read, before authentication (reads only): the portfolio's access as this process remembers it,
    its copy's read queued on `pipe`; nothing remembered: what Postgres says now. portfolio_access_settle
    decides once the caller is known."""
    numbers = _REMEMBERED.get(portfolio_id)
    if numbers is None:
        probed = _probed(portfolio_id)
        return AccessRead(probed.access, probed, None)
    index = len(pipe)
    pipe.get(_copy_key(portfolio_id))
    return AccessRead(_access(portfolio_id, numbers), None, index)


def portfolio_access_settle(read: AccessRead, replies: list, *, portfolio_id: int,
                            user_id: int | None) -> tuple[PortfolioAccess | None, bool]:
    """Once the caller is authenticated: their portfolio's access (None: not theirs, or none: 404), and whether
    the answer read before with `read.access` stands. What Postgres said is learned (remembered, copied).

    Redis's copy confirming what was remembered: that. A copy naming another owner (one that does not exist:
    owner 0): not the caller's, whatever its versions — so a write to someone else's portfolio costs its
    readers no more than a missing one. Otherwise (the caller's with other versions, withdrawn, expired):
    Postgres is asked, and the ordinary path reads the answer."""
    if read.probed is not None:
        portfolio_access_learned(read.probed, portfolio_id=portfolio_id)
        return portfolio_access_owned(read.access, user_id=user_id), True
    copy = replies[read.copy_index]
    if copy == _copy_text(_numbers(read.access)):
        return portfolio_access_owned(read.access, user_id=user_id), True
    owner = _owner_of(copy)
    if owner is not None and owner != user_id:
        return None, False
    probed = _probed(portfolio_id)
    portfolio_access_learned(probed, portfolio_id=portfolio_id)
    return portfolio_access_owned(probed.access, user_id=user_id), False


def _owner_of(copy: bytes | None) -> int | None:
    """The owner a copy names (None: no copy, withdrawn, or unreadable)."""
    if not copy:
        return None
    owner, _, rest = copy.partition(b":")
    try:
        return int(owner) if rest else None
    except ValueError:
        return None


def _probed(portfolio_id: int) -> AccessProbed:
    said = time.time()
    return AccessProbed(portfolio_access_probe(portfolio_id=portfolio_id), said)


def portfolio_access_learned(probed: AccessProbed, *, portfolio_id: int) -> None:
    """An authenticated caller's probe: remembered by this process and written to Redis's copy (unless a newer
    version's or a withdrawal is there, or the copy's lifetime has passed since Postgres said it). Redis
    failing: the next read asks Postgres again."""
    numbers = _numbers(probed.access)
    with _REMEMBERED_LOCK:  # the process's threads share it; an eviction iterates it
        if len(_REMEMBERED) >= _REMEMBERED_MAX and portfolio_id not in _REMEMBERED:
            del _REMEMBERED[next(iter(_REMEMBERED))]
        _REMEMBERED[portfolio_id] = numbers
    with soft_fail("portfolio access copy not written", level=logging.DEBUG):
        _share_queue(redis_client(settings.QUERY_CACHE_ALIAS), [(portfolio_id, numbers)], said=probed.said)


def portfolio_access_forget_remembered() -> None:
    """Forget what this process remembered (the next warm read of each portfolio probes Postgres)."""
    with _REMEMBERED_LOCK:
        _REMEMBERED.clear()


def portfolio_access_share(accesses: Iterable[PortfolioAccess], *, said: float) -> None:
    """A write's new numbers into the copies (each replaced only by a newer version's), as Postgres said them at
    `said` (time.time() taken before the numbers were read, in the writer's transaction: a copy written late,
    after the commit, lives no longer than one written then). Redis failing: logged; the older copies expire
    within PORTFOLIO_ACCESS_CACHE_SECONDS."""
    accesses = list(accesses)
    if not accesses:
        return
    with soft_fail(f"portfolio access: {len(accesses)} copies not written", level=logging.WARNING):
        pipe = redis_client(settings.QUERY_CACHE_ALIAS).pipeline(transaction=False)
        _share_queue(pipe, [(access.pk, _numbers(access)) for access in accesses], said=said)
        pipe.execute()


def portfolio_access_withdraw(*, portfolio_ids: Iterable[int]) -> None:
    """Withdraw the copies for PORTFOLIO_ACCESS_CACHE_SECONDS (a portfolio saved or deleted: a new owner, or
    none): every warm read asks Postgres until they expire. Redis failing: logged; the copies expire as soon."""
    ids = list(portfolio_ids)
    if not ids:
        return
    with soft_fail(f"portfolio access: {len(ids)} copies not withdrawn", level=logging.WARNING):
        pipe = redis_client(settings.QUERY_CACHE_ALIAS).pipeline(transaction=False)
        for portfolio_id in ids:
            pipe.set(_copy_key(portfolio_id), _WITHDRAWN, px=settings.PORTFOLIO_ACCESS_CACHE_SECONDS * 1000)
        pipe.execute()


def portfolio_access_owned(access: PortfolioAccess | None, *, user_id: int | None) -> PortfolioAccess | None:
    """The owner check, the one every hot read makes: `access` if `user_id` owns it; None otherwise (as if it
    did not exist). For portfolio_access_get, and for the read made before authentication (WarmReadApi,
    portfolio/api/views.py) once it knows the user."""
    return access if access is not None and user_id is not None and access.owner_id == user_id else None


def owned_portfolio_or_404(request, portfolio_id: int) -> Portfolio:
    """The caller's portfolio; anyone else's answers 404, as if it did not exist (pages and API alike)."""
    portfolio = portfolio_get(user=request.user, portfolio_id=portfolio_id)
    if portfolio is None:
        raise Http404("No such portfolio.")
    return portfolio
