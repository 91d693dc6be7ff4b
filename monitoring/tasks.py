import time

from celery import shared_task

from charts.services import chart_generations_fail_stuck
from core.jobs import jobs_fail_stuck
from core.redis_store import redis_client
from core.ticks import task_tick_claim
from monitoring.events import events_flush, events_prune
from monitoring.selectors import HEARTBEAT_KEY, HEARTBEAT_MAX_AGE

# Beat sends each of these with its entry's name as `tick` (config/settings.py): a second run of the same
# tick (a second beat) does nothing. The frequent ones send no task events (send_events=False): every few
# seconds they would crowd Flower's task list; their log lines are debug (config/log_filters.py).


@shared_task(name="monitoring.jobs_clean_task", bind=True, send_events=False)
def jobs_clean_task(self, tick: str | None = None) -> dict | None:
    """Fail jobs stuck past their deadline, so nothing says "syncing" forever; fail and queue again chart
    generations that stopped making progress (their worker died)."""
    if not task_tick_claim(self, tick):
        return None
    return {"jobs": jobs_fail_stuck(), "charts": chart_generations_fail_stuck()}


@shared_task(name="monitoring.events_flush_task", bind=True, send_events=False)
def events_flush_task(self, tick: str | None = None) -> int | None:
    if not task_tick_claim(self, tick):
        return None
    return events_flush()


@shared_task(name="monitoring.events_prune_task", bind=True)
def events_prune_task(self, tick: str | None = None) -> int | None:
    if not task_tick_claim(self, tick):
        return None
    return events_prune()


@shared_task(name="monitoring.heartbeat_task", bind=True, send_events=False)
def heartbeat_task(self, tick: str | None = None) -> None:
    """Proof for /healthz that a worker consumes tasks (beat queues this every 30 s)."""
    if not task_tick_claim(self, tick):
        return
    redis_client().set(HEARTBEAT_KEY, f"{time.time():.3f}", ex=HEARTBEAT_MAX_AGE * 10)
