"""Who owns a portfolio and its data version: all the dashboard's hot reads need to find their cached
answers, in one primary-key probe that builds no model instance (a statement prepared once per connection,
core/postgres/prepared.py: on the hottest path of the product, building the ORM query, or even binding and
sending the SQL through a cursor, costs more than Postgres answering it).

Deliberately not cached in Redis: the data version is durable in Postgres so that a write made while
Redis was unreachable still outdates every cached answer the moment Redis is back (portfolio/cache.py).
A copy of the version in Redis would keep serving the older answers until it expired; the owner alone
comes with the same row for free.
"""

from __future__ import annotations

from typing import NamedTuple

from django.http import Http404

from core.postgres.prepared import PreparedQuery
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
    """The portfolio's owner and versions whoever asks (None: no such portfolio). Nothing of it, nor anything
    read with it, may reach a caller before portfolio_access_owned has compared its owner with the caller."""
    row = _VERSION.fetchone([portfolio_id])
    return PortfolioAccess(portfolio_id, *row) if row else None


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
