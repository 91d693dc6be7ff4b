import time

from celery import shared_task
from django_redis import get_redis_connection

from monitoring.events import events_flush, events_prune
from monitoring.jobs import jobs_fail_stuck
from monitoring.selectors import HEARTBEAT_KEY, HEARTBEAT_MAX_AGE


@shared_task(name="monitoring.jobs_clean_task")
def jobs_clean_task() -> list[str]:
    """Fail jobs stuck past their deadline, so nothing says "syncing" forever."""
    return jobs_fail_stuck()


@shared_task(name="monitoring.events_flush_task")
def events_flush_task() -> int:
    return events_flush()


@shared_task(name="monitoring.events_prune_task")
def events_prune_task() -> int:
    return events_prune()


@shared_task(name="monitoring.heartbeat_task")
def heartbeat_task() -> None:
    """Proof for /healthz that a worker consumes tasks (beat queues this every 30 s)."""
    get_redis_connection("default").set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_MAX_AGE * 10)
