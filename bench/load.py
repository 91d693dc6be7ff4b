"""Benchmark 5: load on the dashboard endpoints through the web server over loopback — `wrk` (Debian's,
installed by the bench when missing) with N connections for a fixed time, each connection cycling
through totals, holdings and chart data with no think time (a closed loop: the worst case, since every
client asks again the moment it has an answer).

The same load runs against the framework floor (bench/floor.py: constant bytes behind the same
web server, middleware and token authentication) and against the dashboard endpoints, in alternating
rounds of the same length (floor then dashboard, then dashboard then floor, …: neither side always goes
first, and a swing of the shared machine's speed falls on both): each round's dashboard/floor ratio says
what the dashboard costs beyond the framework, the median over the rounds is the figure, and the rounds of
each side pooled (their latency histograms merged) give its throughput and percentiles.

Bounded twice: wrk's own duration, and a `timeout` around it. Loopback only. Alongside wrk's client
view (throughput, latency percentiles, errors) the run records the server's own time per endpoint
(the web server's access log), the CPU the web tier and wrk used, and how busy the machine's cores were,
so a missed target comes with its cause.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests

from bench.dashboard import ENDPOINTS, chart_make_current
from bench.env import LOG_DIR, apt_install
from bench.floor import BODY as FLOOR_BODY
from bench.floor import body_of
from bench.stats import ratio, summary_ms
from bench.web import procfile_default, web_server

WRK_THREADS = 2  # one per core: more would only add context switches on this machine
FLOOR_PATH = "/bench/floor/"
WARM_UP_SECONDS = 2
ROUNDS = 6  # floor and dashboard alternate this many times, `seconds / ROUNDS` each (each side first in half)
PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}
# wrk's own summary, then its latency histogram: `microseconds:count` for each latency it recorded (`latency(i)`
# walks the distinct values in order), so the rounds of one side can be pooled exactly.
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
  local started = os.clock()
  local buckets = {}
  for i = 1, #latency do
    local value, count = latency(i)
    buckets[i] = string.format("%%d:%%d", value, count)
  end
  io.write("BENCH_HISTOGRAM " .. table.concat(buckets, ",") .. "\\n")
  io.write(string.format("BENCH_HISTOGRAM_CPU %%.6f\\n", os.clock() - started))
end
"""
ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


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


# A TCP socket's state as /proc/net/tcp writes it.
TCP_ESTABLISHED, TCP_LISTEN = "01", "0A"


def tcp_sockets(port: int, *, state: str) -> set[str]:
    """The inodes of this machine's TCP sockets in `state` whose local port is `port` (for a server's port: its
    listening sockets, and its ends of the connections established to it), from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()  # local address "HEX_IP:HEX_PORT" second, state fourth, inode tenth
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def connections_per_process(pids: list[int], *, port: int) -> list[int]:
    """How many connections to `port` each of these processes holds (has accepted and not closed), in their
    order: how evenly the web tier's processes share the clients, which each keeps for as long as it keeps
    the connection alive."""
    inodes = tcp_sockets(port, state=TCP_ESTABLISHED)
    counts = []
    for pid in pids:
        held = 0
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    held += 1
        except OSError:
            pass
        counts.append(held)
    return counts


def _cpu_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _access_log(path: Path) -> dict:
    """Server time per endpoint (seconds) and statuses from the web server's access log (`path status
    milliseconds`: bench.web.ACCESS_LOG_FORMAT)."""
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, int] = defaultdict(int)
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        url, status, millis = parts
        name = "floor" if url.startswith(FLOOR_PATH) else next(
            (n for n, t in ENDPOINTS.items() if url.startswith(t.split("{")[0])), "other")
        by_endpoint[name].append(float(millis) / 1e3)
        statuses[status] += 1
    return {"seconds": dict(by_endpoint), "statuses": dict(statuses)}


def histogram_parse(line: str) -> Counter:
    """wrk's latency histogram as printed by the script (`us:count,…`): {microseconds: count}."""
    found: Counter = Counter()
    for bucket in line.split(","):
        if bucket:
            value, count = bucket.split(":")
            found[int(value)] += int(count)
    return found


def histogram_percentile(histogram: Counter, percent: float) -> int:
    """wrk's own percentile (stats_percentile): the smallest recorded value whose cumulative count reaches
    round(percent / 100 × n + 0.5), C's rounding, so a single run's histogram gives back wrk's figures."""
    n = sum(histogram.values())
    if not n:
        return 0
    rank = math.floor(percent / 100 * n + 0.5 + 0.5)
    total = 0
    for value in sorted(histogram):
        total += histogram[value]
        if total >= rank:
            return value
    return max(histogram)


def _load_once(*, wrk: str, server, name: str, paths: list[str], token: str, clients: int, seconds: int) -> dict:
    """One wrk run of `clients` connections cycling through `paths`, with the server's side of it: raw
    figures, which `figures` turns into the reported ones (alone, or pooled with other runs of the same side)."""
    script = LOG_DIR / f"wrk-{name}.lua"
    script.write_text(_SCRIPT % {"paths": ", ".join(f'"{p}"' for p in paths), "token": token})
    server.access_log.write_text("")
    web_pids = [server.pid, *_children(server.pid)]
    web_before, cpu_before = _ticks_of(web_pids), _cpu_busy()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    argv = ["timeout", str(seconds + 30), wrk, f"-t{min(WRK_THREADS, clients)}", f"-c{clients}", f"-d{seconds}s",
            "--timeout", "10s", "-s", str(script), server.url]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as wrk_process:
        # Halfway through, once every connection is open and has been answered many times: which process holds
        # how many (wrk writes nothing before it ends, so its pipes cannot fill meanwhile).
        time.sleep(seconds / 2)
        held = connections_per_process(_children(server.pid), port=int(server.url.rsplit(":", 1)[1]))
        stdout, stderr = wrk_process.communicate()
    completed = subprocess.CompletedProcess(argv, wrk_process.returncode, stdout, stderr)
    wall = time.monotonic() - started
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    web_ticks, cpu_after = _ticks_of(web_pids) - web_before, _cpu_busy()
    time.sleep(0.5)  # the server writes its access log after each response
    server_side = _access_log(server.access_log)
    lines = completed.stdout.splitlines()
    line = next((x for x in lines if x.startswith("BENCH_JSON ")), None)
    histogram = next((x for x in lines if x.startswith("BENCH_HISTOGRAM ")), None)
    if line is None or histogram is None:
        raise RuntimeError(f"wrk gave no summary (exit {completed.returncode}): {completed.stderr[-500:]}")
    summary = json.loads(line.removeprefix("BENCH_JSON "))
    # Writing the histogram out costs wrk CPU after the load has ended (each `latency(i)` walks its buckets):
    # taken off wrk's CPU, the wall time and the machine's busy time, which would otherwise count it as load.
    extra = float(next((x.split()[1] for x in lines if x.startswith("BENCH_HISTOGRAM_CPU ")), 0.0))
    extra_ticks = round(extra * os.sysconf("SC_CLK_TCK"))
    return {
        "requests": summary["requests"],
        "duration_seconds": summary["duration_us"] / 1e6,
        "histogram_us": histogram_parse(histogram.removeprefix("BENCH_HISTOGRAM ")),
        "wrk_percentiles_us": {k: summary[f"{k}_us"] for k in PERCENTILES},
        "error_kinds": {k: summary[k] for k in ERROR_KINDS},
        "wall_seconds": wall - extra,
        "server": server_side,
        "connections_per_process": held,
        "web_cpu_seconds": web_ticks / os.sysconf("SC_CLK_TCK"),
        "busy_jiffies": (cpu_after[0] - cpu_before[0] - extra_ticks,
                         cpu_after[1] - cpu_before[1] - extra_ticks * (os.cpu_count() or 1)),
        "wrk_cpu_seconds": ((children_after.ru_utime - children_before.ru_utime)
                            + (children_after.ru_stime - children_before.ru_stime) - extra),
    }


def figures(runs: list[dict], *, clients: int, cores: int | None = None) -> dict:
    """The reported figures of one run, or of several runs of one side pooled: requests and durations added,
    latency histograms merged (so percentiles are of every request, not an average of percentiles), CPU added."""
    cores = cores or os.cpu_count() or 1
    requests_done = sum(run["requests"] for run in runs)
    duration = sum(run["duration_seconds"] for run in runs)
    wall = sum(run["wall_seconds"] for run in runs)
    histogram: Counter = Counter()
    for run in runs:
        histogram.update(run["histogram_us"])
    recorded = sum(histogram.values())
    error_kinds = {k: sum(run["error_kinds"][k] for run in runs) for k in ERROR_KINDS}
    seconds: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, int] = defaultdict(int)
    for run in runs:
        for name, values in run["server"]["seconds"].items():
            seconds[name] += values
        for status, count in run["server"]["statuses"].items():
            statuses[status] += count
    busy = sum(run["busy_jiffies"][0] for run in runs) / max(1, sum(run["busy_jiffies"][1] for run in runs))
    throughput = requests_done / duration if duration else 0.0
    mean_us = sum(value * count for value, count in histogram.items()) / recorded if recorded else 0.0
    return {
        "requests": requests_done,
        "throughput_rps": round(throughput, 1),
        "latency_ms": {
            **{name: round(histogram_percentile(histogram, p) / 1000, 2) for name, p in PERCENTILES.items()},
            "max": round(max(histogram, default=0) / 1000, 2), "mean": round(mean_us / 1000, 2)},
        "errors": sum(error_kinds.values()),
        "error_kinds": error_kinds,
        "wall_seconds": round(wall, 1),
        "server": {"server_ms": {name: summary_ms(values) for name, values in seconds.items()},
                   "statuses": dict(statuses)},
        "cpu": {
            "machine_busy_percent": round(busy * 100, 1),
            "web_cpu_ms_per_request": round(sum(run["web_cpu_seconds"] for run in runs) * 1000
                                            / max(1, requests_done), 2),
            "wrk_cpu_percent_of_machine": round(sum(run["wrk_cpu_seconds"] for run in runs)
                                                / max(wall * cores, 1e-9) * 100, 1),
        },
        # Per run, the connections each web process held halfway through it (most first).
        "connections_per_process": [sorted(run["connections_per_process"], reverse=True) for run in runs
                                    if run.get("connections_per_process")],
        # Little's law for a closed loop: each connection waits for its answer, so the mean latency
        # is clients / throughput whatever the server does; p95 cannot be below what this implies.
        "littles_law_mean_ms": round(clients / throughput * 1000, 1) if throughput else None,
    }


def _round_brief(run: dict) -> dict:
    return {"requests": run["requests"], "throughput_rps": run["throughput_rps"],
            "p50_ms": run["latency_ms"]["p50"], "p95_ms": run["latency_ms"]["p95"], "errors": run["errors"],
            "web_cpu_ms_per_request": run["cpu"]["web_cpu_ms_per_request"],
            "machine_busy_percent": run["cpu"]["machine_busy_percent"]}


def _ratios(dashboard: dict, floor: dict) -> dict:
    return {
        "throughput_ratio": ratio(dashboard["throughput_rps"], floor["throughput_rps"]),
        "p95_ratio": ratio(dashboard["latency_ms"]["p95"], floor["latency_ms"]["p95"]),
        "web_cpu_ratio": ratio(dashboard["cpu"]["web_cpu_ms_per_request"], floor["cpu"]["web_cpu_ms_per_request"]),
    }


def rounds_compare(pairs: list[tuple[dict, dict]], *, clients: int, orders: list[list[str]],
                   cores: int | None = None) -> dict:
    """(floor, dashboard) raw runs of each round: every round's figures and ratios, the median of the rounds'
    ratios (the targets' figures: one slow stretch of a shared machine moves one round, not the median), and each
    side's rounds pooled."""
    rounds = []
    for (floor_run, dashboard_run), order in zip(pairs, orders, strict=True):
        floor, dashboard = (figures([run], clients=clients, cores=cores) for run in (floor_run, dashboard_run))
        rounds.append({"order": order, "floor": _round_brief(floor), "dashboard": _round_brief(dashboard),
                       **_ratios(dashboard, floor)})
    floor = figures([f for f, _ in pairs], clients=clients, cores=cores)
    dashboard = figures([d for _, d in pairs], clients=clients, cores=cores)

    def median(key: str) -> float | None:
        values = [r[key] for r in rounds if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    return {
        "rounds": rounds,
        "floor": floor,
        "dashboard": dashboard,
        "vs_floor": {
            "throughput_ratio": median("throughput_ratio"),
            "p95_ratio": median("p95_ratio"),
            "web_cpu_ratio": median("web_cpu_ratio"),
            "of": f"median of {len(rounds)} rounds",
            "pooled": _ratios(dashboard, floor),
        },
    }


def _answers_fill(session: requests.Session, base: str, paths: list[str]) -> list[bytes]:
    """Each dashboard path asked once, in turn: every answer cached (computed if it was not) for its TTL."""
    answers = []
    for path in paths:
        answer = session.get(base + path, timeout=30)
        answer.raise_for_status()
        answers.append(answer.content)
    return answers


def run(*, data, clients: int, seconds: int, web_workers: int, web_threads: int,
        baseline: dict | None, rounds: int = ROUNDS) -> dict:
    wrk = apt_install("wrk", "wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed and could not be installed (apt-get install wrk)")
    rounds = max(1, min(rounds, seconds))
    round_seconds = max(1, round(seconds / rounds))
    pid = data.portfolio_id
    chart_make_current(pid)
    paths = [template.format(pid=pid) for template in ENDPOINTS.values()]
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with web_server(name="web-load", workers=web_workers, threads=web_threads, access_log=True) as server:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {data.token}"
        with session:  # every cache filled: the runs measure the warm path
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
            _load_once(name="warm-up", paths=[FLOOR_PATH, *floor_paths, *paths], seconds=WARM_UP_SECONDS,
                       **run_args)
            run_args["seconds"] = round_seconds
            tiny = _load_once(name="floor-tiny", paths=[FLOOR_PATH], **run_args)
            pairs, orders = [], []
            for index in range(rounds):
                # Floor first in even rounds, dashboard first in odd ones (F D, D F, F D, …).
                order = ["floor", "dashboard"] if index % 2 == 0 else ["dashboard", "floor"]
                done = {}
                for side in order:
                    if side == "floor":
                        done[side] = _load_once(name="floor", paths=floor_paths, **run_args)
                    else:
                        # The answers live DASHBOARD_CACHE_SECONDS (60 s): cached again just before each dashboard
                        # round, so it opens warm as the floor's do, and no answer expires during a round shorter
                        # than that. Cold answers are section 2's; this run measures the warm path.
                        _answers_fill(session, server.url, paths)
                        done[side] = _load_once(name="dashboard", paths=paths, **run_args)
                pairs.append((done["floor"], done["dashboard"]))
                orders.append(order)
    compared = rounds_compare(pairs, clients=clients, orders=orders)
    result = {
        "clients": clients, "seconds": round_seconds * rounds, "round_seconds": round_seconds,
        "wrk_threads": min(WRK_THREADS, clients),
        "web": {"workers": web_workers, "threads": web_threads,
                "procfile_defaults": (web_workers, web_threads) == (
                    procfile_default("WEB_CONCURRENCY"), procfile_default("WEB_THREADS"))},
        "endpoints": list(ENDPOINTS),
        # The dashboard's rounds pooled: the figures of the absolute targets (p95, errors).
        **compared["dashboard"],
        "floor": {**compared["floor"], "answer_bytes": sizes},
        # The same floor answering a few bytes, one round's length: what carrying the dashboard's answer sizes
        # costs by itself.
        "floor_tiny": {**figures([tiny], clients=clients), "answer_bytes": len(FLOOR_BODY)},
        "rounds": compared["rounds"],
        # From this run, same load: what the dashboard costs beyond the framework's own floor.
        "vs_floor": compared["vs_floor"],
    }
    if baseline:
        single = {name: baseline["server"][name]["warm"]["p95"] for name in ENDPOINTS}
        result["single_client_p95_ms"] = single
        result["p95_vs_single_client"] = ratio(result["latency_ms"]["p95"], max(single.values()))
    return result
