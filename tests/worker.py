"""A real Celery worker for integration tests: in-process threads consuming the real Redis broker
(celery.contrib.testing), running the real tasks against the real test database."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from celery.contrib.testing.worker import start_worker
from django_redis import get_redis_connection

from celery_app import app

_running = 0  # workers started by running_worker and not yet stopped


@contextmanager
def running_worker(concurrency: int = 4) -> Iterator[None]:
    global _running
    with start_worker(app, pool="threads", concurrency=concurrency, perform_ping_check=False,
                      queues=["history", "prices", "charts", "default"], loglevel="WARNING", shutdown_timeout=30):
        _running += 1
        try:
            yield
        finally:
            _running -= 1


def worker_running() -> bool:
    """A test worker is consuming: a module-scoped one keeps running for the module's later tests, even
    those that do not ask for it, and takes what they queue."""
    return _running > 0


def worker_settle(timeout: float = 15) -> None:
    """Wait until the worker has nothing queued or running (acks_late tasks stay in Kombu's `unacked`
    hash while they run), so a test's teardown never truncates tables under a running task."""
    client = get_redis_connection("default")
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for queue in ("history", "prices", "charts", "default"):
            pipe.llen(queue)
        pipe.hlen("unacked")
        # Twice in a row: a task the worker has just popped off its queue is in neither until Kombu records
        # it as unacked, a moment later.
        quiet = 0 if any(pipe.execute()) else quiet + 1
        if quiet == 2:
            return
        time.sleep(0.05)
