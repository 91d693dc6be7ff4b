"""Celery tasks of the portfolio app: thin, JSON arguments only."""

from celery import shared_task

from portfolio.import_jobs import transactions_import_run


# Not acks_late: an import writes in one transaction, but a redelivered run after a crash would find
# the file gone or its rows already present (skipped as duplicates): nothing is written twice either way.
@shared_task(name="portfolio.import_transactions_task")
def import_transactions_task(job_id: str, portfolio_id: int, account_id: int | None = None) -> None:
    transactions_import_run(job_id=job_id, portfolio_id=portfolio_id, account_id=account_id)
