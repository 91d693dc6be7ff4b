"""Housekeeping tasks every few seconds stay out of the INFO logs and out of Flower's task list."""

import logging
import os
import threading

import pytest
from celery.app.trace import LOG_SUCCESS
from celery.worker.strategy import _app_trace

from celery_app import app
from monitoring.tasks import events_flush_task, events_prune_task, heartbeat_task, jobs_clean_task
from prices.tasks import refresh_prices_job_task
from tests.reliability.procs import CeleryWorker, child_env, wait_until


def test_routine_lines_of_housekeeping_tasks_are_debug_and_others_stay_info(caplog):
    caplog.set_level(logging.INFO)
    names = ("celery.app.trace", "celery.worker.strategy", "celery.beat")
    trace, strategy, beat = (logging.getLogger(name) for name in names)
    flush = {"id": "1", "name": "monitoring.events_flush_task", "args": "()", "kwargs": "{}", "eta": None,
             "return_value": 0, "runtime": 0.001}
    refresh = {**flush, "name": "prices.refresh_prices_job_task"}
    strategy.info(_app_trace.LOG_RECEIVED, flush)
    trace.info(LOG_SUCCESS, flush)
    beat.info("Scheduler: Sending due task %s (%s)", "flush-events", "monitoring.events_flush_task")
    trace.info(LOG_SUCCESS, refresh)
    beat.info("Scheduler: Sending due task %s (%s)", "refresh-prices-intraday", "prices.refresh_prices_job_task")
    trace.error("Task %(name)s[%(id)s] raised unexpected: boom", flush)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "Task prices.refresh_prices_job_task[1] succeeded in 0.001s: 0"),
        ("INFO", "Scheduler: Sending due task refresh-prices-intraday (prices.refresh_prices_job_task)"),
        ("ERROR", "Task monitoring.events_flush_task[1] raised unexpected: boom"),
    ]


def test_with_debug_logging_they_show_at_debug(caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, {"id": "2", "name": "monitoring.heartbeat_task",
                                                            "return_value": None, "runtime": 0.002})
    assert [r.levelname for r in caplog.records] == ["DEBUG"]


def test_the_frequent_housekeeping_tasks_send_no_task_events(settings):
    quiet = (events_flush_task, heartbeat_task, jobs_clean_task)
    assert {task.name for task in quiet} == settings.HOUSEKEEPING_TASKS
    assert [task.send_events for task in quiet] == [False, False, False]
    assert refresh_prices_job_task.send_events is True


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_no_events_and_no_info_lines_for_housekeeping(tmp_path):
    # given a worker process sending task events (as in production), and someone listening to them
    seen: list[dict] = []
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": seen.append})
        listening = threading.Thread(target=receiver.capture, kwargs={"limit": None, "timeout": None}, daemon=True)
        listening.start()
        try:
            with CeleryWorker("quiet", env=child_env(redis_url=os.environ["REDIS_URL"]), log_dir=tmp_path).start() as w:
                # when a housekeeping task and an ordinary one run
                flush = events_flush_task.apply_async(kwargs={}, queue="default")
                prune = events_prune_task.apply_async(kwargs={}, queue="default")
                wait_until(lambda: any(e["type"] == "task-succeeded" and e.get("uuid") == prune.id for e in seen),
                           timeout=30, what="the ordinary task's events")
                wait_until(lambda: f"{flush.id}" in w.log() or flush.ready(), timeout=30, what="the flush to run")
                log = w.log()
        finally:
            receiver.should_stop = True
    # then the worker sent events for the ordinary one only ("task-sent" is the sender's: bin/beat, which
    # sends the housekeeping ticks, turns those off), and logged only it at INFO
    by_worker = {event.get("uuid") for event in seen
                 if event["type"].startswith("task-") and event["type"] != "task-sent"}
    assert prune.id in by_worker and flush.id not in by_worker
    assert f"monitoring.events_prune_task[{prune.id}] succeeded" in log
    assert "monitoring.events_flush_task" not in log.split("[tasks]")[-1].split("ready.")[-1]


def test_housekeeping_lines_can_be_kept_at_info(caplog, settings):
    settings.HOUSEKEEPING_LOG_LEVEL = "INFO"
    caplog.set_level(logging.INFO)
    logging.getLogger("celery.app.trace").info(LOG_SUCCESS, {"id": "3", "name": "monitoring.heartbeat_task",
                                                            "return_value": None, "runtime": 0.002})
    assert [r.levelname for r in caplog.records] == ["INFO"]
