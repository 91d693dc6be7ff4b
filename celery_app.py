"""The Celery application: `celery -A celery_app worker|beat|flower`.

Configuration lives in Django settings under the CELERY_ namespace, so one environment configures
web, workers and beat alike.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("folio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
