"""Folio settings: everything comes from the environment (django-environ), with safe local defaults.

The names and defaults of the variables are part of Folio's public interface (docs/configuration.md): keep them stable.
"""

import os
import secrets
import sys
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.settings_check import settings_problems
from core.keys import KEY_PREFIX, redis_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# `make run` writes .env (bin/run): debug on, a secret key and the database and Redis it chose, so every
# `python manage.py …` in this checkout works against the same stack. A variable set in the environment
# wins over the file; FOLIO_ENV_FILE names another file, or none when empty (the test suite's choice).
ENV_FILE = os.environ.get("FOLIO_ENV_FILE", str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# A dev key only when debug is on: production must never run on a key that is in the repo.
_DEV_SECRET_KEY = "django-insecure-folio-dev-key-only-for-local-debug-runs"
# Management commands that read models and migrations but never sign anything: a developer (or a
# pre-commit check) may run them in a bare shell. They get a random key nobody can rely on.
_KEYLESS_COMMANDS = {"makemigrations", "showmigrations", "sqlmigrate", "spectacular", "help"}
_KEYLESS_RUN = Path(sys.argv[0]).name == "manage.py" and len(sys.argv) > 1 and sys.argv[1] in _KEYLESS_COMMANDS
SECRET_KEY = env("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")


def _secret_key_problem(key: str) -> str | None:
    """Why a key must not sign anything in production (Django's own check.W009 bounds), or None."""
    advice = "set a random one, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    if not key:
        return "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off."
    if key == _DEV_SECRET_KEY or key.startswith("django-insecure-"):
        return f"DJANGO_SECRET_KEY is a development key (django-insecure-…) but DJANGO_DEBUG is off: {advice}."
    if len(key) < 50 or len(set(key)) < 5:
        return ("DJANGO_SECRET_KEY is too weak for DJANGO_DEBUG off (it needs at least 50 characters, 5 of them "
                f"different): {advice}.")
    return None


if _KEYLESS_RUN and not SECRET_KEY:
    SECRET_KEY = secrets.token_urlsafe(50)
elif not DEBUG and not _KEYLESS_RUN and (_problem := _secret_key_problem(SECRET_KEY)):
    raise ImproperlyConfigured(_problem)

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "config.apps.FolioConfig",
    "prices",
    "portfolio",
    "charts",
    "monitoring",
]

MIDDLEWARE = [
    # First, so the time it records is the whole request's.
    "core.middleware.RequestTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.csp.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a login that hit the lockout into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.signup.signup_context",
            ],
        },
    },
]

# --- Database: Postgres in production and CI; SQLite under var/ for a quick local run only.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'folio.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    VAR_DIR.mkdir(exist_ok=True)
# Reuse connections between requests: a dashboard makes several small API calls in a row.
_CONN_MAX_AGE = DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend, whose health check of a reused connection polls its socket instead of a `SELECT 1`
    # round trip on every request (core/postgres/base.py).
    DATABASES["default"]["ENGINE"] = "core.postgres"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, job progress, rate limits and the Celery broker.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": KEY_PREFIX,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            # Short timeouts: a slow or dead Redis must degrade a request, not hang it.
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
        },
    }
}
# The CACHES entry the query cache (core/query_cache.py) stores its entries in.
QUERY_CACHE_ALIAS = "default"

# --- Auth
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Sessions end after this long (default: 12 hours), API tokens after API_TOKEN_TTL_HOURS.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)
API_TOKEN_TTL_HOURS = env.int("API_TOKEN_TTL_HOURS", default=7 * 24)
# A valid token's user is cached in Redis this long (config/authentication.py): saves a join on every
# API request. Deleting the token or saving the user forgets it at once; this bounds anything else.
AUTH_CACHE_SECONDS = env.int("AUTH_CACHE_SECONDS", default=30)
# A warm dashboard read finds a portfolio's owner and data versions in a Redis copy instead of Postgres
# (portfolio/access.py). Every write updates it at once; this bounds one that could not reach Redis.
PORTFOLIO_ACCESS_CACHE_SECONDS = env.int("PORTFOLIO_ACCESS_CACHE_SECONDS", default=5)
# Failed logins of one username from one address before that pair is locked out, and how long it stays
# locked after its last failure (a failure counts while it is within this window of the next one).
LOGIN_MAX_FAILURES = env.int("LOGIN_MAX_FAILURES", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60)
# Every login (web form, admin, token API) goes through django.contrib.auth.authenticate, so django-axes
# sees them all: its backend refuses a locked-out pair before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lock out the pair (username, address) only: a username alone would let anyone lock a victim out from
# anywhere; an address alone would lock out everyone behind one NAT.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# Read from the two settings above at each attempt (config/auth.py), so there is one source of truth.
AXES_FAILURE_LIMIT = "config.auth.login_failure_limit"
AXES_COOLOFF_TIME = "config.auth.login_cool_off"
# The failures are kept in Postgres, where the users are: a login needs the database anyway, so the
# throttle adds no dependency (with Redis down, logins keep working and stay throttled); see docs.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
# REMOTE_ADDR only: X-Forwarded-For is the client's to forge unless a trusted proxy rewrites it.
AXES_CLIENT_IP_CALLABLE = "config.auth.client_address"
AXES_USERNAME_CALLABLE = "config.auth.login_username"
# Refused attempts during a lockout do not extend it: the Retry-After a client is given stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "config.auth.lockout_response"
# No row per successful login: nothing prunes that table, and sessions and tokens already say who is in.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False

# --- Mail: only for password resets, which are mounted only when mail is configured (config/urls.py).
# e.g. smtp+tls://user:password@smtp.example:587 (django-environ's email_url schemes).
EMAIL_URL = env("EMAIL_URL", default="")
if EMAIL_URL:
    globals().update(env.email_url("EMAIL_URL"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="folio@localhost")
PASSWORD_RESET_ENABLED = bool(EMAIL_URL)
# Anyone who can reach the site may make an account at /accounts/signup/ (a household on a private
# network); off by default, when only staff add users (admin, createsuperuser). Same password rules.
SIGNUP_ENABLED = env.bool("FOLIO_SIGNUP", default=False)

# --- I18n: money is shown in each portfolio's own currency; dates are stored as UTC.
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: served by WhiteNoise from the web server, no CDN.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end libraries from npm (package-lock.json, `npm ci` in `make`), served as our own files.
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- REST framework
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "portfolio.api.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
    # Decimals travel as strings so no client ever rounds money through a float.
    "COERCE_DECIMAL_TO_STRING": True,
    # JSON nested deeper than config/parsers.py's limit is a 400 before it is decoded (no RecursionError).
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # `?format=` is the export's own parameter (csv|json); content negotiation goes by the Accept header.
    "URL_FORMAT_OVERRIDE": None,
    # DRF's choice of renderer, remembered per Accept header (config/negotiation.py).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.negotiation.RememberingContentNegotiation",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Folio API",
    "DESCRIPTION": "Self-hosted investment-portfolio tracker.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery: Redis broker, JSON only (tasks take ids and plain data).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
# Progress lives in Redis hashes (core/jobs.py); task results are only kept briefly.
CELERY_RESULT_EXPIRES = 3600
# An unacknowledged task (its worker killed) is redelivered after this long. Longer than the longest
# task (CELERY_TASK_TIME_LIMIT) and any countdown we use (chart debounce), so a running or waiting task
# is never handed out twice. A refresh job does not wait for it: its deadline is its own time budget
# (prices/refresh/jobs.py deadline_slack_seconds), and a batch lost with its whole worker comes back too late
# for its job, which the cleaner has failed (lock freed) by then (docs/RELIABILITY.md).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Short I/O-bound tasks with acks_late: a worker takes one task per process at a time, so a
# slow batch never holds others hostage in its prefetch buffer.
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_PREFETCH_MULTIPLIER", default=1)
# Bounds for any task: a batch waits at most PROVIDER_MAX_WAIT_SECONDS per attempt.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
# How long a refresh batch waits out a database outage (a restart, a failover) before counting its
# fetched quotes failed, and a Redis outage before giving up on counting them; both are also cut to
# the batch's soft time limit, so a batch always ends within it.
REFRESH_DB_RETRY_SECONDS = env.int("REFRESH_DB_RETRY_SECONDS", default=120)
REFRESH_REDIS_RETRY_SECONDS = env.int("REFRESH_REDIS_RETRY_SECONDS", default=120)
CELERY_WORKER_SEND_TASK_EVENTS = True  # Flower's live view
# bin/beat turns it off: beat sends only periodic ticks, whose "sent" events would crowd Flower's task list.
CELERY_TASK_SEND_SENT_EVENT = env.bool("CELERY_TASK_SEND_SENT_EVENT", default=True)
# Separate queues: a long chart run never delays a price refresh. Workers can be dedicated.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    # History a new trade needs: its own queue, so it never waits behind routine refreshes.
    "prices.backfill_history_task": {"queue": "history"},
    "prices.fx_backfill_task": {"queue": "history"},
    # Someone is typing a trade: never behind the routine refreshes (it shares the history worker with the
    # backfills a new trade needs, which are few at a time).
    "prices.instrument_search_task": {"queue": "history"},
    "prices.*": {"queue": "prices"},
    "charts.*": {"queue": "charts"},
    "portfolio.*": {"queue": "default"},
    "monitoring.*": {"queue": "default"},
}

# One beat, guaranteed: RedBeat keeps the schedule's state and a lock in Redis. A second beat process
# (a replica, a deploy overlapping the old one) waits for the lock instead of sending every entry again;
# the holder renews it each tick, at most CELERY_BEAT_MAX_LOOP_INTERVAL apart, and if the holder dies a
# waiting beat takes over once the lock has expired (CELERY_REDBEAT_LOCK_TIMEOUT).
CELERY_BEAT_SCHEDULER = "redbeat.RedBeatScheduler"
CELERY_REDBEAT_REDIS_URL = env("CELERY_REDBEAT_REDIS_URL", default=CELERY_BROKER_URL)
CELERY_REDBEAT_KEY_PREFIX = redis_key("beat") + ":"
# Set on purpose (even empty): otherwise RedBeat falls back to the broker's transport options.
CELERY_REDBEAT_REDIS_OPTIONS = {}
CELERY_BEAT_MAX_LOOP_INTERVAL = env.int("CELERY_BEAT_MAX_LOOP_INTERVAL", default=5)
CELERY_REDBEAT_LOCK_TIMEOUT = env.int("CELERY_REDBEAT_LOCK_TIMEOUT", default=6 * CELERY_BEAT_MAX_LOOP_INTERVAL)

# The one beat schedule. Each entry expires about its interval: a run that could not start in
# time is dropped rather than piled up behind the next one. The same window makes a tick run once:
# a second run of it (two beats) is a no-op (core/ticks.py), so `expires` stays below the interval.
_REFRESH_INTERVAL = env.int("REFRESH_INTERVAL_SECONDS", default=300)
CELERY_BEAT_SCHEDULE = {
    # Every few minutes; instruments whose market is closed still have a fresh cached quote (it
    # lives until the next open), so this costs provider calls only where a market is open.
    "refresh-prices-intraday": {
        "task": "prices.refresh_prices_job_task",
        "schedule": _REFRESH_INTERVAL,
        "options": {"expires": max(1, _REFRESH_INTERVAL * 4 // 5)},
    },
    # Hourly: after each exchange's close its day's bar is missing and gets fetched; otherwise no call.
    "backfill-history-after-close": {
        "task": "prices.backfill_all_history_task",
        "schedule": crontab(minute=20),
        "options": {"expires": 3000},
    },
    # Sector and country of the instruments anyone needs: new ones and those older than PROFILE_MAX_AGE_DAYS.
    "instrument-profiles-daily": {
        "task": "prices.instrument_profiles_refresh_task",
        "schedule": crontab(minute=40, hour=5),
        "options": {"expires": 3600},
    },
    # ECB reference rates are published around 16:00 CET.
    "fx-rates-nightly": {
        "task": "prices.fx_refresh_task",
        "schedule": crontab(minute=30, hour=16),
        "options": {"expires": 3600},
    },
    "fail-stuck-jobs": {
        "task": "monitoring.jobs_clean_task",
        "schedule": 60,
        "options": {"expires": 50},
    },
    # Events are buffered in Redis by the hot paths and stored in batches.
    "flush-events": {
        "task": "monitoring.events_flush_task",
        "schedule": 10,
        "options": {"expires": 9},
    },
    # Just after midnight every chart is a day behind: those read lately are made again before anyone asks.
    "charts-new-day": {
        "task": "charts.charts_new_day_task",
        "schedule": crontab(minute=5, hour=0),
        "options": {"expires": 3600},
    },
    "prune-events": {
        "task": "monitoring.events_prune_task",
        "schedule": crontab(minute=10, hour=3),
        "options": {"expires": 3600},
    },
    "worker-heartbeat": {
        "task": "monitoring.heartbeat_task",
        "schedule": 30,
        "options": {"expires": 25},
    },
}
# Each periodic task learns which entry sent it, to run each tick once.
for _name, _entry in CELERY_BEAT_SCHEDULE.items():
    _entry["kwargs"] = {**_entry.get("kwargs", {}), "tick": _name}
# Imports of more lines than this run as a worker job with progress instead of inside the request.
IMPORT_SYNC_MAX_ROWS = env.int("IMPORT_SYNC_MAX_ROWS", default=2000)
# A burst of edits or price batches within this many seconds regenerates a chart once.
CHART_DEBOUNCE_SECONDS = env.int("CHART_DEBOUNCE_SECONDS", default=5)
# The charts of portfolios read in the last this many days are made again just after midnight, before anyone asks
# (charts.services.charts_new_day_regenerate); 0: none, each is made again on its first read of the day.
CHART_NEW_DAY_READ_DAYS = env.int("CHART_NEW_DAY_READ_DAYS", default=7)
# A chart generation whose progress has not moved this long is failed and queued again by the stuck-job
# cleaner (its pool process died): no step lasts longer than the task time limit after its debounce.
CHART_GENERATION_STUCK_SECONDS = env.int(
    "CHART_GENERATION_STUCK_SECONDS", default=CHART_DEBOUNCE_SECONDS + CELERY_TASK_TIME_LIMIT + 60)
# Each chart worker process keeps the packed close histories it read, up to this many MB, and asks Postgres
# only for the years that changed since (prices/series.py): 500 holdings x 10 years keep ~15 MB. 0: none kept.
PRICE_SERIES_CACHE_MB = env.float("PRICE_SERIES_CACHE_MB", default=32.0)
# Each chart worker process keeps the exact valuations of its last generations, up to this many MB, and reuses a
# day's when the next generation of that portfolio values it from the same inputs, and the replayed transactions
# they were made from, taken again when the transactions are the same (charts/valuations_kept.py): 500 holdings and
# 3,000 transactions keep ~8 MB. 0: none kept.
CHART_KEPT_VALUATIONS_MB = env.float("CHART_KEPT_VALUATIONS_MB", default=16.0)
# Each web process keeps the big cached answers (8 kB and more: a portfolio's holdings and chart) an API token's
# warm read fetched, up to this many MB, and Redis sends them again only when they changed (core/kept_bytes.py):
# 500 holdings' holdings and chart are ~330 kB. 0: none kept.
KEPT_ANSWERS_MB = env.float("KEPT_ANSWERS_MB", default=32.0)
# Each web process keeps the portfolios' kept replays it decoded last (portfolio/kept.py), up to this many MB, and
# decodes one again only when the text Postgres sends differs: 500 holdings' replay is ~0.6-1 MB decoded. 0: none.
KEPT_REPLAYS_MB = env.float("KEPT_REPLAYS_MB", default=16.0)

# --- Market data. Provider names are part of the public interface (docs/providers.md).
PRICE_PROVIDER = env("PRICE_PROVIDER", default="simulated")
CRYPTO_PRICE_PROVIDER = env("CRYPTO_PRICE_PROVIDER", default=PRICE_PROVIDER)
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=5.0)
PROVIDERS = {
    "yahoo": {
        "base_url": env("YAHOO_BASE_URL", default="https://query2.finance.yahoo.com"),
        "api_key": None,
    },
    "twelvedata": {
        "base_url": env("TWELVEDATA_BASE_URL", default="https://api.twelvedata.com"),
        "api_key": env("TWELVEDATA_API_KEY", default=None),
    },
    "coingecko": {
        "base_url": env("COINGECKO_BASE_URL", default="https://api.coingecko.com/api/v3"),
        "api_key": env("COINGECKO_API_KEY", default=None),
    },
    "stooq": {
        "base_url": env("STOOQ_BASE_URL", default="https://stooq.com"),
        "api_key": env("STOOQ_API_KEY", default=None),
    },
    "alphavantage": {
        "base_url": env("ALPHAVANTAGE_BASE_URL", default="https://www.alphavantage.co"),
        "api_key": env("ALPHAVANTAGE_API_KEY", default=None),
    },
    "frankfurter": {
        "base_url": env("FRANKFURTER_BASE_URL", default="https://api.frankfurter.dev/v1"),
        "api_key": None,
    },
}


# Per-provider pacing overrides: <NAME>_REQUESTS_PER_SECOND, <NAME>_DAILY_QUOTA, <NAME>_BATCH_SIZE
# (a paid plan allows more than the free-tier defaults each client declares).
PROVIDER_LIMITS = {
    name: {
        "requests_per_second": env.float(f"{name.upper()}_REQUESTS_PER_SECOND", default=None),
        "daily_quota": env.int(f"{name.upper()}_DAILY_QUOTA", default=None),
        "batch_size": env.int(f"{name.upper()}_BATCH_SIZE", default=None),
    }
    for name in ["simulated", "yahoo", "twelvedata", "coingecko", "stooq", "alphavantage"]
}
# Attempts per batch, transient errors only; with backoff this bounds one batch to well under a minute.
PROVIDER_MAX_ATTEMPTS = env.int("PROVIDER_MAX_ATTEMPTS", default=4)
PROVIDER_BACKOFF_INITIAL_SECONDS = env.float("PROVIDER_BACKOFF_INITIAL_SECONDS", default=0.5)
PROVIDER_BACKOFF_MAX_SECONDS = env.float("PROVIDER_BACKOFF_MAX_SECONDS", default=30.0)
# Longest a batch waits for a rate-limit token (or a Retry-After) before giving up for this run.
PROVIDER_MAX_WAIT_SECONDS = env.float("PROVIDER_MAX_WAIT_SECONDS", default=60.0)
# Concurrent requests per provider in fetch_prices_parallel; the global bucket still paces them.
PROVIDER_CONCURRENCY = env.int("PROVIDER_CONCURRENCY", default=4)
CIRCUIT_FAILURE_THRESHOLD = env.int("CIRCUIT_FAILURE_THRESHOLD", default=5)
CIRCUIT_COOLDOWN_SECONDS = env.float("CIRCUIT_COOLDOWN_SECONDS", default=60.0)
# Latest-quote cache: short while the instrument's market is open; until the next open when closed.
QUOTE_TTL_OPEN_SECONDS = env.int("QUOTE_TTL_OPEN_SECONDS", default=60)
# Providers publish a session's close a little after the bell: only then is the previous one stale.
STALE_GRACE_MINUTES = env.int("STALE_GRACE_MINUTES", default=30)
# Instrument search: a provider's answer to a query is reused this long (at most one call per query a
# day); a failed search only this long, so an outage is retried soon without hammering the provider.
INSTRUMENT_SEARCH_TTL_SECONDS = env.int("INSTRUMENT_SEARCH_TTL_SECONDS", default=86400)
INSTRUMENT_SEARCH_FAILURE_TTL_SECONDS = env.int("INSTRUMENT_SEARCH_FAILURE_TTL_SECONDS", default=300)
# Sectors and countries change rarely: a profile is fetched again after this many days.
PROFILE_MAX_AGE_DAYS = env.int("PROFILE_MAX_AGE_DAYS", default=30)

# --- Demo data (`manage.py seed_demo`); printed by `make run`.
DEMO_USERNAME = env("FOLIO_DEMO_USERNAME", default="demo")
DEMO_PASSWORD = env("FOLIO_DEMO_PASSWORD", default="folio-demo")

# --- Production hardening, on whenever debug is off (`manage.py check --deploy` passes with it).
# Content-Security-Policy on every answer (django-csp): scripts, styles, images and requests from our own
# origin only, no inline script or style attribute anywhere (templates/, static/js/). A script injected
# into a page — a crafted note or symbol that escaped escaping — cannot run or phone home.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        # Swagger UI draws its icons from data: URIs.
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
    # TLS ends at the proxy in front of the web server, which says so in this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=True)
    # Load balancers and Prometheus probe over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
# Debug on or off: a development stack behind an HTTPS proxy (another origin than the host) needs it as much.
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# Periodic tasks frequent enough to flood the logs: their routine lines are logged at this level instead of
# INFO (config/log_filters.py); INFO keeps them as they were.
HOUSEKEEPING_TASKS = {"monitoring.events_flush_task", "monitoring.heartbeat_task", "monitoring.jobs_clean_task"}
HOUSEKEEPING_LOG_LEVEL = env("HOUSEKEEPING_LOG_LEVEL", default="DEBUG")
_QUIET = {"filters": ["housekeeping"]}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"housekeeping": {"()": "config.log_filters.HousekeepingAtDebug"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"celery.app.trace": _QUIET, "celery.worker.strategy": _QUIET, "celery.beat": _QUIET},
}

# --- Monitoring
# Events log retention: whichever bound is reached first.
EVENTS_MAX_AGE_DAYS = env.int("EVENTS_MAX_AGE_DAYS", default=30)
EVENTS_MAX_COUNT = env.int("EVENTS_MAX_COUNT", default=20_000)
# Bearer token for Prometheus to scrape /metrics without a staff session (unset: staff only).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Follows FLOWER_PORT (bin/flower listens there) unless set: behind a proxy, Flower's public address.
FLOWER_URL = env("FLOWER_URL", default=f"http://127.0.0.1:{env.int('FLOWER_PORT', default=5555)}/")
# Request latencies are buffered per process and written to Redis at most this often.
REQUEST_TIMING_FLUSH_SECONDS = env.float("REQUEST_TIMING_FLUSH_SECONDS", default=1.0)
# Query-cache hit and miss counters likewise: a cache hit then costs one Redis round trip, not two.
QUERY_CACHE_STATS_FLUSH_SECONDS = env.float("QUERY_CACHE_STATS_FLUSH_SECONDS", default=1.0)

# Every numeric setting above that cannot work stops the start here, in one line (config/settings_check.py).
if _problems := settings_problems(globals()):
    raise ImproperlyConfigured(" ".join(_problems))
