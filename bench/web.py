"""The product's web tier as production runs it: gunicorn with the Procfile's worker model (processes
x threads), DEBUG off, static files collected and served by WhiteNoise, on a free loopback port."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.env import LOG_DIR, ROOT, VENV_BIN, child_process, free_port, log_tail, wait_until

# The naive baseline takes seconds per request: gunicorn's default 30 s worker timeout must not kill it.
WORKER_TIMEOUT_SECONDS = 120
_collected = False


def procfile_default(variable: str) -> int:
    """The web process's default for `variable` as the Procfile states it (`${VARIABLE:-N}`): the bench runs
    gunicorn as production does unless told otherwise."""
    found = re.search(rf"\$\{{{variable}:-(\d+)\}}", (ROOT / "Procfile").read_text())
    if found is None:
        raise RuntimeError(f"the Procfile gives no default for {variable}")
    return int(found.group(1))


def procfile_web_command() -> str:
    """The Procfile's web command, as written (its `${VARIABLE:-default}`s unexpanded)."""
    web = next((line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")), None)
    if web is None:
        raise RuntimeError("the Procfile has no web process")
    return web.removeprefix("web:").strip()


def procfile_web_option(option: str) -> bool:
    """Whether the Procfile's web process runs gunicorn with this option (a flag such as `--reuse-port`)."""
    return option in procfile_web_command().split()


@dataclass(frozen=True)
class Server:
    url: str
    pid: int
    access_log: Path


def static_collect() -> None:
    """Once per run: DEBUG off serves hashed static files from the manifest, which collectstatic writes."""
    global _collected
    if not _collected:
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)
        _collected = True


@contextmanager
def gunicorn_server(*, name: str, workers: int, threads: int, access_log: bool = False,
                    reuse_port: bool | None = None) -> Iterator[Server]:
    """`reuse_port`: each worker process listens on a socket of its own (None: as the Procfile says)."""
    static_collect()
    port = free_port()
    log = LOG_DIR / f"{name}-access.log"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    argv = [str(VENV_BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--timeout", str(WORKER_TIMEOUT_SECONDS)]
    if procfile_web_option("--reuse-port") if reuse_port is None else reuse_port:
        argv.append("--reuse-port")
    if access_log:
        # Path, status and the server's own time per request in microseconds.
        argv += ["--access-logfile", str(log), "--access-logformat", "%(U)s %(s)s %(D)s"]
    with child_process(name, argv) as child:
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            if child.process.poll() is not None:
                return True
            try:
                return requests.get(f"{url}/accounts/login/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        try:
            wait_until(up, timeout=60, interval=0.2, what="gunicorn answering")
        except TimeoutError as error:
            raise RuntimeError(f"{error}\n{log_tail(child)}") from None
        if child.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log_tail(child)}")
        yield Server(url=url, pid=child.process.pid, access_log=log)
