"""Who owns a portfolio and its data version: all the dashboard's hot reads need them to find their cached
answers. Postgres holds them (the versions are bumped in the transaction of every write: portfolio/cache.py);
a primary-key probe reads them without building a model instance (a statement prepared once per connection,
core/postgres/prepared.py).

A warm read need not ask Postgres each time. Each web process remembers what it last read from Postgres for a
portfolio, and Redis holds a copy of those numbers that every write keeps true (portfolio/access_copy.py). The
warm read (portfolio/api/views.py) builds its answer's key from what the process remembers and reads the copy
in the same pipeline as the token and the answer; once the caller is authenticated, portfolio_access_settle
decides: the copy saying the same confirms the answer read; naming another owner (or none: the portfolio does
not exist, or was deleted) settles it as 404, whatever the versions, so that another user's portfolio and a
missing one cost a request the same, written to or not; anything else (the caller's with other numbers, a
write in flight, held, expired) sends the request to Postgres and the ordinary path. What Postgres said is
remembered and copied only for an authenticated caller: a refused request writes nothing.

A committed write shows on the next warm read, except where Redis could not be told: a writer that could not
reach Redis (or a change behind the ORM's back), a transaction outlasting access_copy.PENDING_SECONDS, a
process killed between its commit and the copy — then within PORTFOLIO_ACCESS_CACHE_SECONDS. The ordinary path
and sessions always ask Postgres. (What a process's first request for an id can still tell by its time, a
fraction of a millisecond: whether anyone read that id in the last few seconds.)
"""

from __future__ import annotations

import math
import threading
import time
from typing import NamedTuple

from django.http import Http404

from core.postgres.prepared import PreparedQuery
from portfolio.access_copy import ABSENT, Numbers, copy_key, copy_owner, copy_share, copy_text
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


# --- what each process last read, checked against Redis's copy (portfolio/access_copy.py) ----------------

# Per process: portfolio id → the numbers last read from Postgres (absent ones too), for authenticated callers
# only. Bounded: past the limit the oldest entry goes (it then costs one probe more).
_REMEMBERED: dict[int, Numbers] = {}
_REMEMBERED_MAX = 10_000
_REMEMBERED_LOCK = threading.Lock()


def _numbers(access: PortfolioAccess | None) -> Numbers:
    return ABSENT if access is None else (access.owner_id, access.data_version, access.history_version)


def _access(portfolio_id: int, numbers: Numbers) -> PortfolioAccess | None:
    return None if numbers == ABSENT else PortfolioAccess(portfolio_id, *numbers)


class AccessRead(NamedTuple):
    """What a warm read knew before authentication: `access` (what its answer was read for: as remembered, or
    as Postgres said now), when Postgres was asked (`probed`, time.monotonic(); None: it was not, the numbers
    are as remembered), and where Redis's copy and Redis's clock are in the pipeline's replies."""

    access: PortfolioAccess | None
    probed: float | None
    copy_index: int


def portfolio_access_read(pipe, *, portfolio_id: int) -> AccessRead:
    """For a warm read, before authentication (reads only): the portfolio's access as this process remembers it
    (nothing remembered: as Postgres says now), with its copy and Redis's clock queued on `pipe`.
    portfolio_access_settle decides once the caller is known."""
    numbers = _REMEMBERED.get(portfolio_id)
    probed = time.monotonic() if numbers is None else None
    access = portfolio_access_probe(portfolio_id=portfolio_id) if numbers is None else _access(portfolio_id, numbers)
    index = len(pipe)
    pipe.get(copy_key(portfolio_id))
    pipe.time()
    return AccessRead(access, probed, index)


def portfolio_access_settle(read: AccessRead, replies: list, *, portfolio_id: int,
                            user_id: int | None) -> tuple[PortfolioAccess | None, bool]:
    """Once the caller is authenticated: their portfolio's access (None: not theirs, or none: 404), and whether
    the answer read before with `read.access` stands. What Postgres said is learned: remembered, and copied.

    Postgres asked before the pipeline: that, copied unless the copy already says it (older numbers than the
    copy's, the copy's own Lua step refuses).
    Otherwise, Redis's copy confirming what was remembered: that. A copy naming another owner (or none: deleted
    or absent): not the caller's, whatever its versions — so a write to someone else's portfolio costs its
    readers no more than a missing one. Anything else (the caller's with other versions, a write in flight,
    held, expired): Postgres is asked, and the ordinary path reads the answer."""
    copy, (seconds, micros) = replies[read.copy_index], replies[read.copy_index + 1]
    clock_ms = seconds * 1000 + micros // 1000
    if read.probed is not None:
        # Redis's clock was read after Postgres was asked: taken back by all the time since (this process's
        # clock, however long the request stalled in between).
        asked_ms = clock_ms - math.ceil((time.monotonic() - read.probed) * 1000)
        _learned(portfolio_id, read.access, copy=copy, asked_ms=asked_ms)
        return portfolio_access_owned(read.access, user_id=user_id), True
    if copy == copy_text(_numbers(read.access)):
        return portfolio_access_owned(read.access, user_id=user_id), True
    owner = copy_owner(copy)
    if owner is not None and owner != user_id:
        return None, False
    access = portfolio_access_probe(portfolio_id=portfolio_id)
    _learned(portfolio_id, access, copy=copy, asked_ms=clock_ms)
    return portfolio_access_owned(access, user_id=user_id), False


def _learned(portfolio_id: int, access: PortfolioAccess | None, *, copy: bytes | None, asked_ms: int) -> None:
    """What Postgres said for an authenticated caller: remembered by this process, and copied (as asked at
    `asked_ms` by Redis's clock) unless the copy seen says it already."""
    numbers = _numbers(access)
    with _REMEMBERED_LOCK:  # the process's threads share it; an eviction iterates it
        if len(_REMEMBERED) >= _REMEMBERED_MAX and portfolio_id not in _REMEMBERED:
            del _REMEMBERED[next(iter(_REMEMBERED))]
        _REMEMBERED[portfolio_id] = numbers
    if copy != copy_text(numbers):
        copy_share(portfolio_id, numbers, asked_ms=asked_ms)


def portfolio_access_forget_remembered() -> None:
    """Forget what this process remembered (the next warm read of each portfolio probes Postgres)."""
    with _REMEMBERED_LOCK:
        _REMEMBERED.clear()


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
