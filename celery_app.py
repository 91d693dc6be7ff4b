"""The Celery application: `celery -A celery_app worker|beat|flower`.

Configuration lives in Django settings under the CELERY_ namespace, so one environment configures
web, workers and beat alike.
"""

import gc
import os

# A worker runs one task per process, as many processes as cores (and the web, which imports this module
# through config, a request per thread): numpy's BLAS threads (the chart's matrix products) on top of
# that only oversubscribe the cores, and their spin-waiting cost a chart generation a third more CPU
# (measured: 213 -> 151 ms for 500 holdings × 10 years). Set before anything imports numpy; an explicit
# setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("folio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _redbeat_settings(sender: Celery, **kwargs) -> None:
    """RedBeat looks its settings up by their bare names (redbeat_redis_url…), which the CELERY_ namespace
    hides from it: hand them over as such, or it would fall back to its defaults (and warn)."""
    conf = sender.conf
    conf.update({name.lower(): conf[f"CELERY_{name}"] for name in
                 ("REDBEAT_REDIS_URL", "REDBEAT_KEY_PREFIX", "REDBEAT_REDIS_OPTIONS", "REDBEAT_LOCK_TIMEOUT")
                 if f"CELERY_{name}" in conf})


@worker_ready.connect  # solo and thread pools: the tasks run in the worker's own process
@worker_process_init.connect  # prefork: each pool process, once forked
def _started_objects_frozen(**kwargs) -> None:
    """Move what is alive once the worker has started (modules, the task registry, settings: ~100 k objects that
    live as long as the process) out of the cyclic garbage collector's reach, as each web process does
    (config/process.py): each full collection that tasks set off (a price batch's, the work between two chart
    generations, which pause the collector themselves: charts/tasks.py) walked them all again, ~85 ms of a core
    measured in a chart worker's process. What the tasks allocate afterwards is collected as before."""
    gc.freeze()
