"""Per-portfolio data version, durable in Postgres: cache keys carry it, so invalidation is one UPDATE.

The version lives on the portfolio row and is bumped in the same transaction as the write that
changes the portfolio's data (its transactions, its settings, or the prices and rates it uses). So it
survives Redis evictions and outages: a chart made from an older version is known to be outdated as
soon as anyone reads it. The warm reads find the versions in a copy in Redis (portfolio/access_copy.py), which
every bump writes too: a write made while Redis was unreachable from the writer shows there within
PORTFOLIO_ACCESS_CACHE_SECONDS.
"""

from collections.abc import Iterable
from datetime import date

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portfolio.access_copy import copies_write
from portfolio.models import Portfolio
from portfolio.signals import portfolios_changed


def portfolio_version_get(*, portfolio_id: int) -> int:
    """The current data version (0 for an unknown portfolio)."""
    return Portfolio.objects.filter(pk=portfolio_id).values_list("data_version", flat=True).first() or 0


def history_changed(*, since: date | None) -> bool:
    """Whether a change from day `since` on (None: any day) reaches past today: a change of today's closes
    alone (an intraday quote refresh) leaves the history of completed sessions as it was."""
    return since is None or since < timezone.localdate()


def portfolio_versions_bump(*, portfolio_ids: Iterable[int], since: date | None = None) -> list[int]:
    """Make every cached read of these portfolios obsolete (their chart history too unless only today
    changed: history_changed), in the caller's transaction; once it
    commits, announce `portfolios_changed` (with `since`: see portfolio.signals). Returns the portfolios
    bumped (those that exist)."""
    ids = sorted(set(portfolio_ids))
    if not ids:
        return []
    with transaction.atomic():
        # Rows locked in id order: two writers bumping overlapping sets can never deadlock. Read with their lock,
        # the numbers are those the UPDATE adds to.
        rows = list(Portfolio.objects.select_for_update().filter(pk__in=ids).order_by("pk")
                    .values_list("pk", "owner_id", "data_version", "history_version"))
        locked = [pk for pk, *_ in rows]
        bumped = {"data_version": F("data_version") + 1}
        history = history_changed(since=since)
        if history:
            bumped["history_version"] = F("history_version") + 1
        Portfolio.objects.filter(pk__in=locked).update(**bumped)
        if locked:
            # The warm reads' copies: marked pending now (a reader meanwhile finds Postgres still saying the older
            # numbers and cannot copy them), set to the new numbers at commit (portfolio/access_copy.py).
            copies_write((pk, (owner, data + 1, history_version + 1 if history else history_version))
                         for pk, owner, data, history_version in rows)
            transaction.on_commit(lambda: portfolios_changed.send(sender=Portfolio, portfolio_ids=locked, since=since,
                                                                  history=history))
    return locked


def portfolio_version_bump(*, portfolio_id: int) -> None:
    portfolio_versions_bump(portfolio_ids=[portfolio_id])
