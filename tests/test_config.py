"""Settings from the environment, and the local Redis that `make run` starts when none answers."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


def _import_settings(**env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings as s; print(s.DEBUG, s.ALLOWED_HOSTS)"],
        cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _import_settings(DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is required" in result.stderr


def test_settings_come_from_the_environment():
    result = _import_settings(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="x" * 50, DJANGO_ALLOWED_HOSTS="folio.example,a.b")
    assert result.stdout.strip() == "False ['folio.example', 'a.b']"
    assert _import_settings(DJANGO_DEBUG="1").stdout.strip() == "True ['127.0.0.1', 'localhost']"


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
