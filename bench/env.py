"""Where the benchmarks run: their own Postgres database and Redis database, the processes they start
(always in their own process group, always stopped), and what the machine is.

Other engineers run tests on the same machine at the same time, so the bench never touches anything
it did not create: database `folio_bench`, Redis database 11, servers on free high ports.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RESULTS_DIR = ROOT / "bench" / "results"
LOG_DIR = ROOT / "var" / "bench"

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/folio_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
# Redis databases other sessions use: the bench refuses to flush them whatever BENCH_REDIS_URL says.
FOREIGN_REDIS_DBS = {0, 13, 14, 15}


def environment_apply(*, rate: float | None, batch_size: int) -> None:
    """Environment for this process and every child: production-like (DEBUG off), bench databases. The
    provider's pacing is the product's default unless `rate` overrides it."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_DEBUG": "0",
        # A key that exists only for this local, loopback-only run.
        "DJANGO_SECRET_KEY": "bench-only-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        # Plain HTTP on loopback (TLS would end at a proxy in production): no Secure-only cookies,
        # no redirect to https, no HSTS.
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_SSL_REDIRECT": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
        "YAHOO_BATCH_SIZE": str(batch_size),
    })
    if rate is None:
        os.environ.pop("YAHOO_REQUESTS_PER_SECOND", None)
    else:
        os.environ["YAHOO_REQUESTS_PER_SECOND"] = f"{rate:g}"


def redis_db() -> int:
    path = urlsplit(REDIS_URL).path.strip("/")
    return int(path or 0)


def admin_dsn() -> tuple[str, str]:
    """(DSN of the server's `postgres` database, name of the bench database)."""
    parts = urlsplit(DATABASE_URL)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.strip("/")


def free_port() -> int:
    """A free port in 18000-18999 (the range this workplace's sessions keep for their own servers)."""
    for _ in range(200):
        port = random.randint(18000, 18999)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18000-18999")


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


@contextmanager
def child_process(name: str, argv: list[str], *, env: dict[str, str] | None = None) -> Iterator[Child]:
    """Run a server for the duration of the block, in its own process group, output to var/bench/."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = LOG_DIR / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, process, log)
        try:
            yield child
        finally:
            child_stop(child)


def child_stop(child: Child, *, timeout: float = 20) -> None:
    """SIGTERM to the group this bench started (warm shutdown), SIGKILL if it lingers."""
    if child.process.poll() is not None:
        return
    pgid = child.process.pid  # start_new_session: the child leads its own group
    with _suppress_lookup():
        os.killpg(pgid, signal.SIGTERM)
    try:
        child.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with _suppress_lookup():
            os.killpg(pgid, signal.SIGKILL)
        child.process.wait(timeout=5)


@contextmanager
def _suppress_lookup() -> Iterator[None]:
    # The group may already be gone (the server exited on its own): nothing left to stop.
    with suppress(ProcessLookupError):
        yield


def apt_install(package: str, binary: str) -> str | None:
    """The path of `binary`, installing Debian's `package` non-interactively when it is missing (the
    bench runs as root on the project's machines); None when that is not possible here."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    for attempt in ([install], [["apt-get", "update", "-q"], install]):
        for argv in attempt:
            subprocess.run(argv, env=quiet, capture_output=True, timeout=600, check=False)
        if found := shutil.which(binary):
            return found
    return None


def log_tail(child: Child, lines: int = 30) -> str:
    try:
        return "\n".join(child.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition") -> float:
    """Poll until `predicate()` is truthy; the seconds it took. TimeoutError past `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s")


# --- the machine, as the run reads it


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_snapshot() -> dict:
    """Machine-wide busy CPU and this process tree's own CPU (children counted once waited for), in seconds."""
    import resource

    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "at": time.monotonic(),
        "machine_busy": (sum(values) - values[3] - values[4]) / hz,  # all but idle and iowait
        "bench": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime,
    }


def cpu_share(before: dict, after: dict) -> dict:
    """Average cores busy between two snapshots: the whole machine, and the bench's own processes."""
    wall = max(after["at"] - before["at"], 1e-9)
    machine = (after["machine_busy"] - before["machine_busy"]) / wall
    bench = (after["bench"] - before["bench"]) / wall
    return {"machine_cores_busy": round(machine, 2), "bench_processes_cores": round(bench, 2),
            "rest_cores": round(max(0.0, machine - bench), 2)}


def _command_version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def machine_describe() -> dict:
    """CPU, cores, memory and the versions of everything measured, read now from the machine."""
    import django
    from django.db import connection
    from django_redis import get_redis_connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
    redis_info = get_redis_connection("default").info("server")
    import numpy

    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "numpy": numpy.__version__,
        "granian": importlib.metadata.version("granian"),
        "postgres": postgres,
        "postgres_shared_buffers": shared_buffers,
        "postgres_autovacuum": postgres_autovacuum(),
        "redis": redis_info.get("redis_version"),
        # Other work on the machine shares its cores: what was running when the bench started.
        "load_average_at_start": load_average(),
        **tools_describe(),
    }


def database_vacuum() -> float:
    """VACUUM ANALYZE the bench's whole database, as autovacuum does in the background on a production server: the
    dead rows of the bulk writes a section made (the refresh's 10,000 portfolios leave hundreds of thousands) gone,
    the visibility map and statistics fresh, so the next section does not read through them. The bench does it
    between sections, outside their timings, whether or not the server's autovacuum is on (when it is, it would
    otherwise run at a moment of its choosing, during the next section). Returns the seconds it took."""
    from django.db import connection

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return round(time.monotonic() - started, 2)


def postgres_autovacuum() -> str:
    """The server's autovacuum setting ("on" or "off")."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        return cursor.fetchone()[0]


def tools_describe() -> dict:
    """The versions of the tools the bench installs when they are missing (read again once it has run)."""
    return {"chromium": _command_version(["/usr/bin/chromium", "--version"]),
            "wrk": _command_version(["wrk", "--version"])}
