"""Settings for the test suite: the real settings, on a Redis database of its own.

Tests talk to real Postgres (DATABASE_URL, set by .ci/run) and real Redis. They use database 15 of
the configured Redis server (or TEST_REDIS_URL) so that a test run, which flushes its Redis
database, never touches the data of a `make run` stack on the same server; the processes of a
parallel run take one each, counting down from it.
"""

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

# A fresh key per run (processes the suite starts inherit it): no key written in the repository is one that
# debug-off settings accept.
os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
# The suite never reads the .env a `make run` in this checkout wrote: it runs on its own settings.
os.environ.setdefault("FOLIO_ENV_FILE", "")


def _test_redis_url() -> str:
    """The suite's Redis database: TEST_REDIS_URL's, or 15 of REDIS_URL's server. A run spread over processes
    (pytest-xdist: `make test` runs TEST_WORKERS of them) gives each its own, counting down from it — gw0 that
    one, gw1 the one below — since every test flushes its database and each process runs its own worker on
    the broker in it. None of them may be `make run`'s (0) or the benchmarks' (11, 12), which some tests use."""
    given = os.environ.get("TEST_REDIS_URL")
    parts = urlsplit(given or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    base = int(parts.path.strip("/") or 0) if given else 15
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker or os.environ.get("FOLIO_TEST_REDIS_OF") == worker:
        # One process, or a child a test started with the database its process resolved (the child
        # inherits the xdist variables: it must not count down again).
        return urlunsplit(parts._replace(path=f"/{base}"))
    processes = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    if {base - index for index in range(processes)} & {0, 11, 12}:
        raise RuntimeError(f"{processes} test processes would take Redis databases {base} down to"
                           f" {base - processes + 1}, one of them 0, 11 or 12: run fewer or set TEST_REDIS_URL")
    os.environ["FOLIO_TEST_REDIS_OF"] = worker
    os.environ["TEST_REDIS_URL"] = urlunsplit(parts._replace(path=f"/{base - int(worker.removeprefix('gw'))}"))
    return os.environ["TEST_REDIS_URL"]


os.environ["REDIS_URL"] = _test_redis_url()

from config.settings import *  # noqa: E402,F403

# Fast hashing: the suite creates many users; production keeps the strong default.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Production settings otherwise (debug off, secure cookies); the test client and live server speak
# plain HTTP on loopback.
SECURE_SSL_REDIRECT = False
# Tests read request timings right after the request.
REQUEST_TIMING_FLUSH_SECONDS = 0
QUERY_CACHE_STATS_FLUSH_SECONDS = 0
