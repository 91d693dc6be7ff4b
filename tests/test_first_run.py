"""A fresh checkout after `make run`'s set-up: the documented `python manage.py …` commands work there
with no variable set by hand, because bin/run wrote a .env that the settings read."""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.reliability.procs import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]
# What a shell has in a fresh terminal: none of Folio's variables (the suite's own are dropped too).
DROPPED = ("DJANGO_", "DATABASE_URL", "FOLIO_", "FLOWER_", "CELERY_", "PORT")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The repository's files as a clone has them (tracked and new, nothing ignored: no .env, no var/)."""
    target = tmp_path_factory.mktemp("fresh") / "folio"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file() and not source.is_symlink():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    # What `make venv` would install: the same environment and front-end libraries.
    (target / ".venv").symlink_to(Path(sys.prefix))
    (target / "node_modules").symlink_to(ROOT / "node_modules")
    return target


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code in (200, 503)
    except requests.RequestException:
        return False


def shell_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    return {**env, "REDIS_URL": os.environ["REDIS_URL"], **extra}  # the suite's own Redis database


def run(checkout: Path, *command: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(command), cwd=checkout, env=shell_env(**extra), capture_output=True, text=True,
                          timeout=600)


def manage(checkout: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return run(checkout, str(checkout / ".venv" / "bin" / "python"), "manage.py", *args, **extra)


def test_manage_py_works_in_a_fresh_checkout_after_the_set_up(checkout):
    # given a fresh checkout where only `make run`'s set-up has run
    assert not (checkout / ".env").exists()
    setup = run(checkout, "bin/run", "--setup-only")
    assert setup.returncode == 0, setup.stderr[-3000:]
    written = dict(line.split("=", 1) for line in (checkout / ".env").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert written["DJANGO_DEBUG"] == "1" and len(written["DJANGO_SECRET_KEY"]) >= 50
    assert written["DATABASE_URL"] == f"sqlite:///{checkout}/var/folio.sqlite3"
    assert written["REDIS_URL"] == os.environ["REDIS_URL"]
    assert (checkout / "var" / "folio.sqlite3").exists()

    # when the README's commands run in a plain shell
    check = manage(checkout, "check")
    assert check.returncode == 0, check.stderr
    created = manage(checkout, "createsuperuser", "--noinput", "--username", "owner", "--email", "o@example.com",
                     DJANGO_SUPERUSER_PASSWORD="a-long-owner-password-1")
    assert created.returncode == 0, created.stderr
    assert "Superuser created successfully." in created.stdout

    # then they reached the set-up's database: the demo user and the new superuser are both there
    listed = manage(checkout, "shell", "-c", "from django.contrib.auth.models import User; "
                    "print(sorted(User.objects.values_list('username', 'is_superuser')))")
    assert listed.stdout.strip().splitlines()[-1] == "[('demo', False), ('owner', True)]"


def test_a_variable_set_in_the_environment_wins_over_the_env_file(checkout):
    if not (checkout / ".env").exists():
        assert run(checkout, "bin/run", "--setup-only").returncode == 0
    shown = manage(checkout, "shell", "-c", "from django.conf import settings as s; "
                   "print(s.DATABASES['default']['NAME'], s.FLOWER_URL)",
                   DATABASE_URL=f"sqlite:///{checkout}/var/other.sqlite3", FLOWER_PORT="5641")
    assert shown.stdout.strip().splitlines()[-1].split() == [f"{checkout}/var/other.sqlite3", "http://127.0.0.1:5641/"]
    # and the next set-up keeps what the file says (its key), while taking what the environment says
    key = (checkout / ".env").read_text().split("DJANGO_SECRET_KEY=")[1].split()[0]
    again = run(checkout, "bin/run", "--setup-only")
    assert again.returncode == 0 and f"DJANGO_SECRET_KEY={key}\n" in (checkout / ".env").read_text()


def test_ctrl_c_stops_make_run_quietly(checkout):
    # given `make run` up in the checkout (small: one process per pool), on ports of its own
    port, flower_port = free_port(), free_port()
    env = shell_env(PORT=str(port), FLOWER_PORT=str(flower_port), WEB_CONCURRENCY="1", WORKER_CONCURRENCY="1",
                    HISTORY_WORKER_CONCURRENCY="1", FLOWER_WAIT_SECONDS="5")
    output = checkout / "make-run.log"
    with output.open("wb") as log:
        # a session of its own: Ctrl-C in a terminal signals the whole foreground group, as killpg does here
        make = subprocess.Popen(["make", "run"], cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/healthz") or make.poll() is not None, timeout=180,
                   interval=0.5, what="make run serving")
        assert make.poll() is None, output.read_text()[-3000:]
        # when Ctrl-C is pressed
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=90)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    # then everything stopped, and make said nothing about an error
    text = output.read_text()
    assert "Folio is starting." in text and "web.1 stopped" in text
    assert "make: ***" not in text and "Error 130" not in text, text[-2000:]
    leftovers = subprocess.run(["pgrep", "-g", str(make.pid)], capture_output=True, text=True).stdout.split()
    assert leftovers == []
