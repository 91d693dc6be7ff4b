"""Housekeeping tasks run every few seconds: their "received", "succeeded" and "Sending due task" lines
would be most of a worker's and beat's log. They are logged at debug level instead (LOG_LEVEL=DEBUG shows
them); failures and everything else keep their level."""

import logging

from django.conf import settings


class HousekeepingAtDebug(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and self._names_housekeeping(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True

    @staticmethod
    def _names_housekeeping(record: logging.LogRecord) -> bool:
        args = record.args
        # celery.app.trace and celery.worker.strategy pass a dict with the task's name; celery.beat a tuple
        # (entry name, task name).
        names = [args.get("name")] if isinstance(args, dict) else list(args or ())
        return any(name in settings.HOUSEKEEPING_TASKS for name in names if isinstance(name, str))
