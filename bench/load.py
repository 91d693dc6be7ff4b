"""Benchmark 5: load on the dashboard endpoints through gunicorn over loopback — `wrk` (Debian's,
installed by the bench when missing) with N connections for a fixed time, each connection cycling
through totals, holdings and chart data with no think time (a closed loop: the worst case, since every
client asks again the moment it has an answer).

The same load first runs against the framework floor (bench/floor.py: constant bytes behind the same
gunicorn, middleware and token authentication), then against the dashboard endpoints: their ratios to
the floor say what the dashboard costs beyond the framework, on any machine.

Bounded twice: wrk's own duration, and a `timeout` around it. Loopback only. Alongside wrk's client
view (throughput, latency percentiles, errors) the run records the server's own time per endpoint
(gunicorn's access log), the CPU the web tier and wrk used, and how busy the machine's cores were,
so a missed target comes with its cause.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import requests

from bench.dashboard import ENDPOINTS, chart_make_current
from bench.env import LOG_DIR, apt_install
from bench.floor import BODY as FLOOR_BODY
from bench.floor import body_of
from bench.stats import ratio, summary_ms
from bench.web import gunicorn_server

WRK_THREADS = 2  # one per core: more would only add context switches on this machine
FLOOR_PATH = "/bench/floor/"
WARM_UP_SECONDS = 2
_SCRIPT = """
local paths = {%(paths)s}
local counter = 0
wrk.headers["Authorization"] = "Token %(token)s"
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,' ..
    '"write":%%d,"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p95_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"mean_us":%%.1f}\\n', summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def _ticks_of(pids: list[int]) -> int:
    """utime + stime, in clock ticks, of these processes (the web tier: master and workers)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _access_log(path: Path) -> dict:
    """Server time per endpoint from gunicorn's access log (`path status microseconds`)."""
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, int] = defaultdict(int)
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        url, status, micros = parts
        name = "floor" if url.startswith(FLOOR_PATH) else next(
            (n for n, t in ENDPOINTS.items() if url.startswith(t.split("{")[0])), "other")
        by_endpoint[name].append(int(micros) / 1e6)
        statuses[status] += 1
    return {"server_ms": {name: summary_ms(values) for name, values in by_endpoint.items()},
            "statuses": dict(statuses)}


def _load_once(*, wrk: str, server, name: str, paths: list[str], token: str, clients: int, seconds: int) -> dict:
    """One wrk run of `clients` connections cycling through `paths`, with the server's side of it."""
    script = LOG_DIR / f"wrk-{name}.lua"
    script.write_text(_SCRIPT % {"paths": ", ".join(f'"{p}"' for p in paths), "token": token})
    server.access_log.write_text("")
    web_pids = [server.pid, *_children(server.pid)]
    web_before, cpu_before = _ticks_of(web_pids), _cpu_busy()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    argv = ["timeout", str(seconds + 30), wrk, f"-t{min(WRK_THREADS, clients)}", f"-c{clients}", f"-d{seconds}s",
            "--timeout", "10s", "-s", str(script), server.url]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    web_ticks, cpu_after = _ticks_of(web_pids) - web_before, _cpu_busy()
    time.sleep(0.5)  # gunicorn writes its access log after each response
    server_side = _access_log(server.access_log)
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (exit {completed.returncode}): {completed.stderr[-500:]}")
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    hz = os.sysconf("SC_CLK_TCK")
    busy = (cpu_after[0] - cpu_before[0]) / max(1, cpu_after[1] - cpu_before[1])
    requests_done = summary["requests"]
    errors = sum(summary[k] for k in ("connect", "read", "write", "status", "timeout"))
    throughput = requests_done / (summary["duration_us"] / 1e6)
    return {
        "requests": requests_done,
        "throughput_rps": round(throughput, 1),
        "latency_ms": {k.removesuffix("_us"): round(summary[k] / 1000, 2)
                       for k in ("p50_us", "p90_us", "p95_us", "p99_us", "max_us", "mean_us")},
        "errors": errors,
        "error_kinds": {k: summary[k] for k in ("connect", "read", "write", "status", "timeout")},
        "wall_seconds": round(wall, 1),
        "server": server_side,
        "cpu": {
            "machine_busy_percent": round(busy * 100, 1),
            "web_cpu_ms_per_request": round(web_ticks / hz * 1000 / max(1, requests_done), 2),
            "wrk_cpu_percent_of_machine": round(
                ((children_after.ru_utime - children_before.ru_utime) + (children_after.ru_stime
                                                                         - children_before.ru_stime))
                / (wall * (os.cpu_count() or 1)) * 100, 1),
        },
        # Little's law for a closed loop: each connection waits for its answer, so the mean latency
        # is clients / throughput whatever the server does; p95 cannot be below what this implies.
        "littles_law_mean_ms": round(clients / throughput * 1000, 1) if throughput else None,
    }


def _answers_fill(session: requests.Session, base: str, paths: list[str]) -> list[bytes]:
    """Each dashboard path asked once, in turn: every answer cached (computed if it was not) for its TTL."""
    answers = []
    for path in paths:
        answer = session.get(base + path, timeout=30)
        answer.raise_for_status()
        answers.append(answer.content)
    return answers


def run(*, data, clients: int, seconds: int, web_workers: int, web_threads: int, baseline: dict | None) -> dict:
    wrk = apt_install("wrk", "wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed and could not be installed (apt-get install wrk)")
    pid = data.portfolio_id
    chart_make_current(pid)
    paths = [template.format(pid=pid) for template in ENDPOINTS.values()]
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with gunicorn_server(name="web-load", workers=web_workers, threads=web_threads, access_log=True) as server:
        with requests.Session() as session:  # every cache filled: the runs measure the warm path
            session.headers["Authorization"] = f"Token {data.token}"
            sizes = [len(answer) for answer in _answers_fill(session, server.url, paths)]
            # The floor carries the same bytes as the dashboard's answers, one size per endpoint.
            floor_paths = [f"{FLOOR_PATH}?bytes={size}" for size in sizes]
            for path, size in zip([FLOOR_PATH, *floor_paths], [0, *sizes], strict=True):
                floor_answer = session.get(server.url + path, timeout=30)
                if floor_answer.status_code != 200 or floor_answer.content != body_of(size):
                    raise RuntimeError(f"framework floor answered {floor_answer.status_code} to {path}")
        run_args = {"wrk": wrk, "server": server, "token": data.token, "clients": clients}
        # Every worker thread through all paths once (imports, connections), untimed: the runs compare
        # steady states, not which one came first.
        _load_once(name="warm-up", paths=[FLOOR_PATH, *floor_paths, *paths], seconds=WARM_UP_SECONDS, **run_args)
        run_args["seconds"] = seconds
        tiny = _load_once(name="floor-tiny", paths=[FLOOR_PATH], **run_args)
        floor = _load_once(name="floor", paths=floor_paths, **run_args)
        # The answers filled above have outlived their TTL (DASHBOARD_CACHE_SECONDS, 60 s) by now (the warm-up and
        # two floor runs): filled again, or the dashboard run would always open with every answer expired and all
        # its clients waiting on one recomputation made under the full load. Cold answers are section 2's; this
        # run measures the warm path, as the floor runs measure theirs.
        with requests.Session() as session:
            session.headers["Authorization"] = f"Token {data.token}"
            _answers_fill(session, server.url, paths)
        dashboard = _load_once(name="dashboard", paths=paths, **run_args)
    result = {
        "clients": clients, "seconds": seconds, "wrk_threads": min(WRK_THREADS, clients),
        "web": {"workers": web_workers, "threads": web_threads},
        "endpoints": list(ENDPOINTS),
        **dashboard,
        "floor": {**floor, "answer_bytes": sizes},
        # The same floor answering a few bytes: what carrying the dashboard's answer sizes costs by itself.
        "floor_tiny": {**tiny, "answer_bytes": len(FLOOR_BODY)},
        # Both from this run, same load: what the dashboard costs beyond the framework's own floor.
        "vs_floor": {
            "throughput_ratio": ratio(dashboard["throughput_rps"], floor["throughput_rps"]),
            "p95_ratio": ratio(dashboard["latency_ms"]["p95"], floor["latency_ms"]["p95"]),
            "web_cpu_ratio": ratio(dashboard["cpu"]["web_cpu_ms_per_request"], floor["cpu"]["web_cpu_ms_per_request"]),
        },
    }
    if baseline:
        single = {name: baseline["gunicorn"][name]["warm"]["p95"] for name in ENDPOINTS}
        result["single_client_p95_ms"] = single
        result["p95_vs_single_client"] = ratio(result["latency_ms"]["p95"], max(single.values()))
    return result
