"""Large CSV imports run as a worker job: the web request only stores the file and answers at once.

A file of more than IMPORT_SYNC_MAX_ROWS lines waits in Redis (bounded by the import's own size
limit) for a worker, which checks and writes it exactly as a small import is (all rows or none),
reporting the rows checked as the job's progress; the page and the API follow `GET /api/jobs/{id}/`.
"""

import logging
from dataclasses import asdict

from django.conf import settings

from core.jobs import (
    job_batch_record,
    job_create,
    job_errors_add,
    job_fail,
    job_progress_set,
    job_result_set,
)
from core.redis_store import redis_client, redis_key
from core.tasks import task_send
from portfolio.importing import (
    ImportRejected,
    ImportResult,
    content_lines,
    import_file_precheck,
    transactions_import,
)
from portfolio.models import Account, Portfolio

logger = logging.getLogger(__name__)

JOB_KIND = "import_transactions"
# The file waits this long for a worker; an import is checked and written in far less.
FILE_TTL_SECONDS = 3600
# A worker checks some thousands of rows a second: room for the largest file (MAX_ROWS) on a busy machine.
DEADLINE_SECONDS = 30 * 60


def _file_key(job_id: str) -> str:
    return redis_key("import", job_id, "file")


def transactions_import_or_queue(*, portfolio: Portfolio, content: bytes, owner_id: int,
                                 account: Account | None = None) -> ImportResult | str:
    """Import a file here and now, or — more lines than a request should check and write while the user
    waits — queue it for a worker and return the job's id. ImportRejected for a bad file (at once
    for one too large to import at all, before anything is queued)."""
    import_file_precheck(content=content)
    if content_lines(content) > settings.IMPORT_SYNC_MAX_ROWS:
        return transactions_import_start(portfolio=portfolio, content=content, owner_id=owner_id, account=account)
    return transactions_import(portfolio=portfolio, content=content, account=account)


def transactions_import_start(*, portfolio: Portfolio, content: bytes, owner_id: int,
                              account: Account | None = None) -> str:
    """Queue the import of `content` into the portfolio (rows naming no account into `account`); returns the
    job id to follow."""
    rows = max(content_lines(content) - 1, 0)
    job_id = job_create(kind=JOB_KIND, total=rows, batches=1, owner_id=owner_id, deadline_seconds=DEADLINE_SECONDS)
    redis_client().set(_file_key(job_id), content, ex=FILE_TTL_SECONDS)
    task_send("portfolio.import_transactions_task", kwargs={"job_id": job_id, "portfolio_id": portfolio.pk,
                                                            "account_id": account.pk if account else None})
    return job_id


def transactions_import_run(*, job_id: str, portfolio_id: int, account_id: int | None = None) -> None:
    """The worker's side: check and write the file, with progress; its outcome ends the job."""
    client = redis_client()
    content = client.get(_file_key(job_id))
    portfolio = Portfolio.objects.filter(pk=portfolio_id).first()
    account = Account.objects.filter(pk=account_id, portfolio_id=portfolio_id).first() if account_id else None
    if content is None or portfolio is None or (account_id and account is None):
        job_fail(job_id=job_id, reason="The file, the portfolio or the account is gone: nothing was imported.")
        return
    try:
        result = transactions_import(
            portfolio=portfolio, content=content, account=account,
            progress=lambda done, total: job_progress_set(job_id=job_id, done=done, total=total))
    except ImportRejected as rejected:
        # Every row the import names (as a small import's answer does), and the reason before them.
        keep = len(rejected.row_errors) + 1
        job_errors_add(job_id=job_id, keep=keep, errors=[
            f"row {e.row}{f', {e.column}' if e.column else ''}: {e.message}" for e in rejected.row_errors])
        job_fail(job_id=job_id, keep=keep,
                 reason=f"Nothing was imported: {len(rejected.row_errors)} problem(s) in the file.")
    except Exception as error:
        # Whatever else stops it (the database refusing a row, a lost connection) ends the job too: nothing was
        # written (one transaction), and a job left in PROGRESS would be waited on until its deadline.
        logger.exception("import job %s failed", job_id)
        job_fail(job_id=job_id, reason=f"Nothing was imported: {type(error).__name__}: {error}")
        raise
    else:
        job_result_set(job_id=job_id, result=asdict(result))
        job_batch_record(job_id=job_id, batch_id="file", ok=0, failed=0)
    finally:
        client.delete(_file_key(job_id))
