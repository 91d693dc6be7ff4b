"""Housekeeping tasks every few seconds stay out of the INFO logs and out of Flower's task list."""

import logging

from celery.app.trace import LOG_SUCCESS
from celery.worker.strategy import _app_trace

from monitoring.tasks import events_flush_task, heartbeat_task, jobs_clean_task
from prices.tasks import refresh_prices_job_task


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
