"""Settings from the environment (secret key checks, mail), and the local Redis `make run` starts when none answers."""

import json
import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.reliability.procs import database_url_of_test

ROOT = Path(__file__).resolve().parent.parent


# A key of the shape production should use (what the error message suggests).
STRONG_KEY = secrets.token_urlsafe(50)


def _import_settings(show: str = "s.DEBUG, s.ALLOWED_HOSTS", module: str = "config.settings",
                     **env) -> subprocess.CompletedProcess:
    """`show` printed by a fresh process that imports `module` with `env` (the suite's own settings left out)."""
    ours = ("DJANGO_", "EMAIL_", "REDIS_", "TEST_REDIS_", "FOLIO_TEST_REDIS_", "PYTEST_XDIST_")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    return subprocess.run(
        [sys.executable, "-c", f"import os, {module} as s; print({show})"],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _import_settings(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_settings_come_from_the_environment():
    result = _import_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=STRONG_KEY, DJANGO_ALLOWED_HOSTS="folio.example,a.b")
    assert result.stdout.strip() == "False ['folio.example', 'a.b']"
    assert _import_settings(DJANGO_DEBUG="1").stdout.strip() == "True ['127.0.0.1', 'localhost']"


def test_csrf_trusted_origins_are_read_with_debug_on_or_off():
    # a development stack behind an HTTPS proxy posts forms from another origin than its host, as production does
    for debug, key in (("1", {}), ("0", {"DJANGO_SECRET_KEY": STRONG_KEY})):
        result = _import_settings("s.CSRF_TRUSTED_ORIGINS", DJANGO_DEBUG=debug,
                                  DJANGO_CSRF_TRUSTED_ORIGINS="https://folio.example", **key)
        assert result.stdout.strip() == "['https://folio.example']", (debug, result.stderr[-300:])


DEV_KEY = "django-insecure-folio-dev-key-only-for-local-debug-runs"  # config/settings.py
KNOWN = ("DJANGO_SECRET_KEY is a development key (django-insecure-…) but DJANGO_DEBUG is off: set a random one, "
         "e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'.")
WEAK = ("DJANGO_SECRET_KEY is too weak for DJANGO_DEBUG off (it needs at least 50 characters, 5 of them different): "
        "set a random one, e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'.")
BAD_KEYS = {
    "the repository's dev key": (DEV_KEY, KNOWN),
    "any django-insecure- key": ("django-insecure-" + STRONG_KEY, KNOWN),
    "one character": ("x", WEAK),
    "49 random characters": (STRONG_KEY[:49], WEAK),
    "60 times the same character": ("x" * 60, WEAK),
    "4 distinct characters": ("abcd" * 20, WEAK),
}


@pytest.mark.parametrize(("key", "message"), BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_debug_off_refuses_a_known_or_weak_secret_key_in_one_line(key, message):
    result = _import_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"django.core.exceptions.ImproperlyConfigured: {message}"


def test_a_strong_key_is_accepted_and_debug_runs_on_the_dev_key():
    assert _import_settings("s.SECRET_KEY == s._DEV_SECRET_KEY", DJANGO_DEBUG="0",
                            DJANGO_SECRET_KEY=STRONG_KEY).stdout.strip() == "False"
    assert _import_settings("s.SECRET_KEY", DJANGO_DEBUG="1").stdout.strip() == DEV_KEY


def test_password_reset_is_enabled_by_a_mail_server_in_email_url():
    show = "s.PASSWORD_RESET_ENABLED, s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_USE_TLS, s.EMAIL_HOST_USER"
    configured = _import_settings(show, DJANGO_DEBUG="1", EMAIL_URL="smtp+tls://folio:secret@mail.example:587")
    assert configured.stdout.strip() == (
        "True django.core.mail.backends.smtp.EmailBackend mail.example 587 True folio")
    assert _import_settings("s.PASSWORD_RESET_ENABLED", DJANGO_DEBUG="1").stdout.strip() == "False"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ensure_redis_starts_a_server_when_none_answers_and_reuses_it():
    port = _free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    started = subprocess.run([sys.executable, "bin/ensure_redis"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=30)
    try:
        assert started.returncode == 0, started.stderr
        assert "Started Redis" in started.stdout
        client = redis.Redis(port=port)
        assert client.ping() is True
        again = subprocess.run([sys.executable, "bin/ensure_redis"], cwd=ROOT, env=env, capture_output=True,
                               text=True, timeout=30)
        assert again.returncode == 0 and "Redis is up" in again.stdout
    finally:
        redis.Redis(port=port).shutdown(nosave=True)


def test_keyless_management_commands_run_without_a_secret_key_and_others_refuse():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    check = subprocess.run([sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"], cwd=ROOT,
                           env=clean, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "No changes detected" in check.stdout
    refused = subprocess.run([sys.executable, "manage.py", "migrate", "--plan"], cwd=ROOT, env=clean,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in refused.stderr


@pytest.mark.parametrize(("env", "line"), [
    ({"LOGIN_MAX_FAILURES": "0"}, "LOGIN_MAX_FAILURES=0 must be at least 1."),
    ({"PROVIDER_TIMEOUT_SECONDS": "0"}, "PROVIDER_TIMEOUT_SECONDS=0 must be more than 0."),
    ({"REFRESH_INTERVAL_SECONDS": "1"}, "REFRESH_INTERVAL_SECONDS=1 must be at least 2."),
    ({"AUTH_CACHE_SECONDS": "0"}, "AUTH_CACHE_SECONDS=0 must be at least 1."),
    ({"PORTFOLIO_ACCESS_CACHE_SECONDS": "0"}, "PORTFOLIO_ACCESS_CACHE_SECONDS=0 must be at least 1."),
    ({"INSTRUMENT_SEARCH_TTL_SECONDS": "0"}, "INSTRUMENT_SEARCH_TTL_SECONDS=0 must be at least 1."),
    ({"QUERY_CACHE_STATS_FLUSH_SECONDS": "0"}, "QUERY_CACHE_STATS_FLUSH_SECONDS=0 must be more than 0."),
    ({"HOUSEKEEPING_LOG_LEVEL": "LOUD"}, "HOUSEKEEPING_LOG_LEVEL=LOUD must be DEBUG or INFO."),
    ({"CELERY_TASK_TIME_LIMIT": "100"}, "CELERY_TASK_TIME_LIMIT=100 must be more than CELERY_TASK_SOFT_TIME_LIMIT=300"),
    ({"CELERY_VISIBILITY_TIMEOUT": "0"}, "CELERY_VISIBILITY_TIMEOUT=0 must be more than 0."),
    ({"CHART_GENERATION_STUCK_SECONDS": "0"}, "CHART_GENERATION_STUCK_SECONDS=0 must be more than 0."),
])
def test_a_setting_that_cannot_work_stops_the_start_in_one_line(env, line):
    result = _import_settings(DJANGO_DEBUG="1", **env)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"django.core.exceptions.ImproperlyConfigured: {line}"), last


def test_flower_url_follows_flower_port_unless_set():
    assert _import_settings("s.FLOWER_URL", DJANGO_DEBUG="1", FLOWER_PORT="5641").stdout.strip() == \
        "http://127.0.0.1:5641/"
    assert _import_settings("s.FLOWER_URL", DJANGO_DEBUG="1", FLOWER_PORT="5641",
                            FLOWER_URL="https://flower.example/").stdout.strip() == "https://flower.example/"


def test_a_web_process_starts_with_its_urlconf_loaded_and_what_lives_as_long_as_it_out_of_the_collectors_reach():
    # config/wsgi.py, as the web server loads it in each worker process: the views are imported before the first
    # request, and the objects alive then are frozen (full collections during requests no longer walk them)
    show = "gc.get_freeze_count(), len(gc.get_objects()), 'portfolio.api.views' in sys.modules"
    result = subprocess.run(
        [sys.executable, "-c", f"import gc, json, sys; import config.wsgi; print(json.dumps([{show}]))"],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    frozen, collectable, views_loaded = json.loads(result.stdout)
    assert views_loaded and frozen > 50_000 and collectable < frozen / 10


def test_a_worker_process_freezes_what_it_started_with_out_of_the_collectors_reach():
    # celery_app.py, as a worker starts: once a prefork pool process is forked (worker_process_init), or once a solo
    # or thread-pool worker is ready (worker_ready), what is alive is frozen; nothing is frozen before
    script = """
import gc, json
import django
import celery_app
from celery.signals import worker_process_init, worker_ready
django.setup()
celery_app.app.loader.import_default_modules()
found = [gc.get_freeze_count()]
worker_process_init.send(sender=None)
found.append(gc.get_freeze_count())
gc.unfreeze()
worker_ready.send(sender=None)
found += [gc.get_freeze_count(), len(gc.get_objects())]
print(json.dumps(found))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    before, forked, ready, collectable = json.loads(result.stdout)
    assert before == 0 and forked > 50_000 and ready > 50_000 and collectable < ready / 10


def test_a_web_process_starts_with_the_exchange_calendar_loaded_so_its_first_valuation_loads_nothing_more():
    # Given a web process as the web server starts one (config/wsgi.py)
    # When its first valuation asks whether a price is stale (the default exchange's calendar)
    # Then the calendar was built before it (start-up, not the first cold dashboard read, pays ~0.75 s):
    # the question imports no module and builds no calendar, and answers as the calendar says
    script = """
import json, sys
from datetime import UTC, date, datetime
import config.wsgi
from prices.market_calendar import calendar_get, price_is_stale
loaded, modules = calendar_get.cache_info().currsize, len(sys.modules)
stale = [price_is_stale(mic="XNYS", price_date=date(2024, 7, d), now=datetime(2024, 7, 8, 12, tzinfo=UTC))
         for d in (3, 5)]
print(json.dumps([loaded, "exchange_calendars" in sys.modules, len(sys.modules) - modules,
                  calendar_get.cache_info().misses, stale]))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    loaded, library_loaded, modules_imported, calendars_built, stale = json.loads(result.stdout)
    # Friday 5 July 2024 is the last session before Monday noon (the 4th a holiday): the 3rd's close is stale.
    assert [loaded, library_loaded, modules_imported, calendars_built, stale] == [1, True, 0, 1, [True, False]]


def test_a_web_process_whose_calendar_library_fails_to_load_still_starts(tmp_path):
    # Given an exchange-calendars install that fails on import (a broken upgrade, a missing data file)
    broken = tmp_path / "exchange_calendars"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise ImportError('exchange_calendars is broken here')\n")
    # When the web server loads config/wsgi.py in a worker process
    show = "'portfolio.api.views' in sys.modules, gc.get_freeze_count() > 0"
    result = subprocess.run(
        [sys.executable, "-c", f"import gc, json, sys; import config.wsgi; print(json.dumps([{show}]))"],
        cwd=ROOT, env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1",
                       "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])},
        capture_output=True, text=True, timeout=60,
    )
    # Then the process starts (the whole site is not down for want of a head start), says why it could not
    # load the calendar, and is otherwise as ready as ever
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, True]
    assert "prices.market_calendar.market_calendars_load failed" in result.stderr
    assert "exchange_calendars is broken here" in result.stderr


def _test_settings_redis(**env) -> subprocess.CompletedProcess:
    return _import_settings("s.REDIS_URL, os.environ['REDIS_URL']", module="config.settings_test",
                            REDIS_URL="redis://127.0.0.1:6379/0", **env)


@pytest.mark.parametrize(("env", "database"), [
    ({}, 15),
    ({"TEST_REDIS_URL": "redis://127.0.0.1:6379/10"}, 10),
    ({"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2"}, 15),
    ({"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2"}, 14),
    ({"PYTEST_XDIST_WORKER": "gw2", "PYTEST_XDIST_WORKER_COUNT": "3", "TEST_REDIS_URL": "redis://127.0.0.1:6379/9"}, 7),
    # a child a test process started: it inherits the process's resolved database and the xdist variables
    ({"PYTEST_XDIST_WORKER": "gw1", "PYTEST_XDIST_WORKER_COUNT": "2", "FOLIO_TEST_REDIS_OF": "gw1",
      "TEST_REDIS_URL": "redis://127.0.0.1:6379/14"}, 14),
])
def test_each_process_of_a_parallel_run_takes_a_redis_database_of_its_own(env, database):
    result = _test_settings_redis(**env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [f"redis://127.0.0.1:6379/{database}"] * 2


@pytest.mark.parametrize("env", [
    {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "4"},  # 15 down to 12: bench-quick's
    {"PYTEST_XDIST_WORKER": "gw0", "PYTEST_XDIST_WORKER_COUNT": "2", "TEST_REDIS_URL": "redis://127.0.0.1:6379/1"},
])
def test_a_parallel_run_refuses_to_reach_the_databases_of_make_run_or_the_benchmarks(env):
    result = _test_settings_redis(**env)
    assert result.returncode != 0
    assert "run fewer or set TEST_REDIS_URL" in result.stderr.strip().splitlines()[-1]


def _check_postgres(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bin" / "check_postgres")], cwd=ROOT, timeout=60,
                          env={**os.environ, "DATABASE_URL": url}, capture_output=True, text=True)


def test_make_test_says_in_one_line_when_its_postgres_cannot_be_reached(db):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = _check_postgres(f"postgres://postgres@127.0.0.1:{port}/folio")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"make test needs Postgres, and the one at 127.0.0.1:{port} (user postgres)"
                                     " cannot be reached: ")
    assert "Connection refused" in refused.stderr
    assert refused.stderr.rstrip().endswith("Start it, or set DATABASE_URL to one that can.")

    if connection.vendor == "postgresql":  # the suite's own server answers
        up = _check_postgres(database_url_of_test())
        where = f"{connection.settings_dict['HOST'] or '127.0.0.1'}:{connection.settings_dict['PORT'] or 5432}"
        assert (up.returncode, up.stdout, up.stderr) == (0, f"Postgres is up at {where}\n", "")
    sqlite = _check_postgres("sqlite:///var/folio.sqlite3")  # not a Postgres: left to the suite
    assert (sqlite.returncode, sqlite.stdout, sqlite.stderr) == (0, "", "")
