"""The product's web tier as production runs it: the Procfile's web command (granian, its processes x threads),
DEBUG off, static files collected and served by WhiteNoise, on a free loopback port."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.env import LOG_DIR, ROOT, VENV_BIN, child_process, free_port, log_tail, wait_until

# What the load section reads of each request from the access log: path, status and the server's own time.
ACCESS_LOG_FORMAT = "%(path)s %(status)d %(dt_ms).3f"
_collected = False


# A variable of the Procfile's command with its default: `${VARIABLE:-default}`.
_PROCFILE_VARIABLE = re.compile(r"\$\{([A-Z_]+):-([^}]*)\}")


def procfile_default(variable: str) -> int:
    """The web process's default for `variable` as the Procfile states it (`${VARIABLE:-N}`): the bench runs
    the web tier as production does unless told otherwise."""
    defaults = dict(_PROCFILE_VARIABLE.findall(procfile_web_command()))
    if variable not in defaults:
        raise RuntimeError(f"the Procfile gives no default for {variable}")
    return int(defaults[variable])


def procfile_web_command() -> str:
    """The Procfile's web command, as written (its `${VARIABLE:-default}`s unexpanded)."""
    web = next((line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")), None)
    if web is None:
        raise RuntimeError("the Procfile has no web process")
    return web.removeprefix("web:").strip()


def procfile_web_argv(*, port: int, host: str = "127.0.0.1", workers: int | None = None,
                      threads: int | None = None) -> list[str]:
    """The Procfile's web command as an argv, run from this checkout's virtualenv: bound to `host`:`port`, with
    `workers` processes of `threads` threads each (None: the Procfile's defaults), every other option as written."""
    given = {"WEB_BIND": host, "PORT": str(port), "WEB_CONCURRENCY": workers, "WEB_THREADS": threads}

    def expand(variable: re.Match) -> str:
        value = given.get(variable.group(1))
        return variable.group(2) if value is None else str(value)

    argv = shlex.split(_PROCFILE_VARIABLE.sub(expand, procfile_web_command()))
    return [str(VENV_BIN / argv[0]), *argv[1:]]


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


def _access_log_config(path: Path) -> Path:
    """A logging configuration for the server sending its access log, one line per request in ACCESS_LOG_FORMAT,
    to `path` (appended to: the load section empties it between runs) and its own messages to its output."""
    config = LOG_DIR / f"{path.stem}-logging.json"
    config.write_text(json.dumps({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"generic": {"format": "[%(levelname)s] %(message)s"}, "access": {"format": "%(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "generic", "stream": "ext://sys.stdout"},
                     "access": {"class": "logging.FileHandler", "formatter": "access", "filename": str(path),
                                "mode": "a"}},
        "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
                    "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False}},
    }))
    return config


@contextmanager
def web_server(*, name: str, workers: int, threads: int, access_log: bool = False) -> Iterator[Server]:
    """The Procfile's web tier with `workers` processes of `threads` threads each; `access_log`: each request's path,
    status and server time (ACCESS_LOG_FORMAT) written to the Server's access_log file."""
    static_collect()
    port = free_port()
    log = LOG_DIR / f"{name}-access.log"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    argv = procfile_web_argv(port=port, workers=workers, threads=threads)
    if access_log:
        argv += ["--access-log", "--access-log-fmt", ACCESS_LOG_FORMAT, "--log-config", str(_access_log_config(log))]
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
            wait_until(up, timeout=60, interval=0.2, what="the web server answering")
        except TimeoutError as error:
            raise RuntimeError(f"{error}\n{log_tail(child)}") from None
        if child.process.poll() is not None:
            raise RuntimeError(f"the web server exited:\n{log_tail(child)}")
        yield Server(url=url, pid=child.process.pid, access_log=log)
