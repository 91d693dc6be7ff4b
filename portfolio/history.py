"""History a portfolio's new trades need, asked for as soon as they are written, and its progress.

The claim keys of the backfills a portfolio asked for are listed under the portfolio in Redis, so its
dashboard can say "fetching history for …" until they land (and the chart regenerates).
"""

import logging
from collections.abc import Iterable
from datetime import date

from core.redis_store import redis_client, redis_key
from portfolio.models import Portfolio, Transaction
from portfolio.needs import benchmark_needed_from, transactions_needs
from prices.history import fx_backfill_request, history_backfill_request, history_pending_get

logger = logging.getLogger(__name__)

# Longer than any backfill's claim: the list only serves to name what is still pending.
PROGRESS_SECONDS = 3600


def _progress_key(portfolio_id: int) -> str:
    return redis_key("portfolio", portfolio_id, "history")


def portfolio_history_request(*, portfolio: Portfolio, instruments: dict[int, date],
                              currencies: dict[str, date]) -> list[str]:
    """Ask for the closes and rates these needs lack (after the write committed). Never fails the
    caller: with Redis or the broker down, the scheduled backfills fetch them later."""
    try:
        keys = history_backfill_request(needs=instruments)
        keys += fx_backfill_request(base=portfolio.base_currency, needs=currencies)
        if keys:
            client = redis_client()
            listed = [key.decode() for key in client.smembers(_progress_key(portfolio.pk))]
            pipe = client.pipeline()
            if listed and not history_pending_get(keys=listed):
                pipe.delete(_progress_key(portfolio.pk))  # everything asked before has landed: count anew
            pipe.sadd(_progress_key(portfolio.pk), *keys)
            pipe.expire(_progress_key(portfolio.pk), PROGRESS_SECONDS)
            pipe.execute()
        return keys
    except Exception:
        logger.warning("history for portfolio %s not requested now; the scheduled backfill will", portfolio.pk,
                       exc_info=True)
        return []


def portfolio_history_request_for(*, portfolio: Portfolio,
                                  transactions: Iterable[Transaction] | None = None) -> list[str]:
    """What these new transactions need; None: what the whole portfolio needs (after a change of base currency
    or benchmark). Either way the benchmark's closes from a week before the earliest of them too: the comparison
    is measured from the benchmark's last close before the portfolio's first day, so a trade dated before the first
    one (or the first trade of a portfolio whose benchmark was chosen before it) needs them back to then."""
    if transactions is None:
        transactions = Transaction.objects.filter(portfolio=portfolio).select_related("instrument")
    transactions = list(transactions)
    instruments, currencies = transactions_needs(base=portfolio.base_currency, transactions=transactions)
    if portfolio.benchmark_id and transactions:
        # A deposit's too: cash alone has a line to compare.
        earliest = benchmark_needed_from(min(tx.date for tx in transactions))
        instruments[portfolio.benchmark_id] = min(instruments.get(portfolio.benchmark_id, earliest), earliest)
    return portfolio_history_request(portfolio=portfolio, instruments=instruments, currencies=currencies)


def portfolio_history_listed_queue(pipe, *, portfolio_id: int) -> None:
    """Queue on `pipe` the read portfolio_history_progress starts with (its reply is `listed`)."""
    pipe.smembers(_progress_key(portfolio_id))


def portfolio_history_progress(*, portfolio_id: int, listed: set[bytes] | None = None) -> dict:
    """{"pending": labels still being fetched, "done": n, "total": n} of what the portfolio asked for
    (`listed`: what portfolio_history_listed_queue read, when it rode with another read)."""
    try:
        if listed is None:
            listed = redis_client().smembers(_progress_key(portfolio_id))
        keys = [key.decode() for key in listed]
        pending = history_pending_get(keys=keys)
    except Exception:  # Redis down: nothing known to be pending
        return {"pending": [], "done": 0, "total": 0}
    return {"pending": pending, "done": len(keys) - len(pending), "total": len(keys)}
