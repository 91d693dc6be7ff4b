"""Real Celery workers for the benchmarks: started as separate processes with the product's own app,
consuming the bench's Redis database, and known to be ready (and later idle) through Celery's
remote control, not through sleeps."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.env import VENV_BIN, Child, child_process, log_tail, wait_until


def worker_name(queue: str) -> str:
    return f"bench-{queue}@{socket.gethostname()}"


@contextmanager
def celery_worker(*, queue: str, pool: str, concurrency: int, env: dict[str, str] | None = None) -> Iterator[Child]:
    from celery_app import app

    name = worker_name(queue)
    argv = [str(VENV_BIN / "celery"), "-A", "celery_app", "worker", f"--pool={pool}", f"--concurrency={concurrency}",
            f"--queues={queue}", f"--hostname={name}", "--loglevel=WARNING",
            # No cluster chatter: one worker, and its start-up should not wait on mingle's timeouts.
            "--without-gossip", "--without-mingle"]
    with child_process(f"worker-{queue}", argv, env=env) as child:
        try:
            wait_until(lambda: child.process.poll() is not None or bool(app.control.ping([name], timeout=0.5)),
                       timeout=60, interval=0.2, what=f"worker {name} answering ping")
        except TimeoutError as error:
            raise RuntimeError(f"{error}\n{log_tail(child)}") from None
        if child.process.poll() is not None:
            raise RuntimeError(f"worker {name} exited:\n{log_tail(child)}")
        yield child


def worker_wait_idle(*, queue: str, timeout: float = 180) -> float:
    """Seconds until the worker runs no task (after-work such as a job's finaliser)."""
    from celery_app import app

    name = worker_name(queue)

    def idle() -> bool:
        active = app.control.inspect([name], timeout=1.0).active() or {}
        return name in active and not active[name]

    started = time.monotonic()
    wait_until(idle, timeout=timeout, interval=0.2, what=f"worker {name} idle")
    return time.monotonic() - started


def queue_purge(*names: str) -> None:
    """Drop tasks queued on the bench's broker that no bench worker will consume (e.g. the chart
    regenerations a refresh asks for), so they never run into a later measurement."""
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    client.delete(*names)
    # Countdown tasks wait in kombu's unacked hash until a worker takes them; nobody will.
    client.delete("unacked", "unacked_index")


def worker_wait_settled(*, queue: str, timeout: float = 60) -> float:
    """Seconds until the worker runs nothing and holds nothing for later (no countdown task waiting in
    it): what one measurement queued cannot land in the next one."""
    from celery_app import app

    name = worker_name(queue)

    def settled() -> bool:
        inspect = app.control.inspect([name], timeout=1.0)
        found = [(getattr(inspect, kind)() or {}).get(name) for kind in ("active", "reserved", "scheduled")]
        return all(tasks == [] for tasks in found)

    started = time.monotonic()
    wait_until(settled, timeout=timeout, interval=0.2, what=f"worker {name} settled")
    return time.monotonic() - started
