"""Housekeeping tasks run every few seconds: their "received", "succeeded" and "Sending due task" lines
would be most of a worker's and beat's log. They are logged at HOUSEKEEPING_LOG_LEVEL (debug) instead
(LOG_LEVEL=DEBUG shows them); failures and everything else keep their level."""

import logging

from django.conf import settings


class HousekeepingAtDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        level = logging.getLevelName(settings.HOUSEKEEPING_LOG_LEVEL.upper())
        if record.levelno == logging.INFO and level != logging.INFO and self._names_housekeeping(record):
            record.levelno, record.levelname = level, logging.getLevelName(level)
            return logging.getLogger(record.name).isEnabledFor(level)
        return True

    @staticmethod
    def _names_housekeeping(record: logging.LogRecord) -> bool:
        args = record.args
        # celery.app.trace and celery.worker.strategy pass a dict with the task's name; celery.beat a tuple
        # (entry name, task name).
        names = [args.get("name")] if isinstance(args, dict) else list(args or ())
        return any(name in settings.HOUSEKEEPING_TASKS for name in names if isinstance(name, str))
