"""Settings for the test suite: the real settings, on a Redis database of its own.

Tests talk to real Postgres (DATABASE_URL, set by .ci/run) and real Redis. They use database 15 of
the configured Redis server (or TEST_REDIS_URL) so that a test run, which flushes its Redis
database, never touches the data of a `make run` stack on the same server.
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
    if os.environ.get("TEST_REDIS_URL"):
        return os.environ["TEST_REDIS_URL"]
    parts = urlsplit(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return urlunsplit(parts._replace(path="/15"))


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
