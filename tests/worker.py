"""A real Celery worker for integration tests: in-process threads consuming the real Redis broker
(celery.contrib.testing), running the real tasks against the real test database."""

from collections.abc import Iterator
from contextlib import contextmanager

from celery.contrib.testing.worker import start_worker

from celery_app import app


@contextmanager
def running_worker(concurrency: int = 4) -> Iterator[None]:
    with start_worker(app, pool="threads", concurrency=concurrency, perform_ping_check=False,
                      queues=["prices", "charts", "default"], loglevel="WARNING", shutdown_timeout=30):
        yield
