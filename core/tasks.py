"""Queueing Celery tasks by name, so a service never imports a task module (tasks import services)."""

from typing import Any

from celery import current_app


def task_send(name: str, *, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
    """Queue the task registered as `name`; `options` as for apply_async (queue, countdown, expires…)."""
    current_app.send_task(name, kwargs=kwargs or {}, **options)
