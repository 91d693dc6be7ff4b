from celery import shared_task

from monitoring.jobs import jobs_fail_stuck


@shared_task(name="monitoring.jobs_clean_task")
def jobs_clean_task() -> list[str]:
    """Fail jobs stuck past their deadline, so nothing says "syncing" forever."""
    return jobs_fail_stuck()
