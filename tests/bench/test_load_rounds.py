"""The load section's comparison with the framework floor (bench/load.py): floor and dashboard in alternating
rounds, the median of the rounds' ratios as the targets' figure, each side's rounds pooled by merging wrk's
latency histograms — and the report saying so (bench/report.py)."""

import os
import socket
from collections import Counter

import pytest

from bench.env import ROOT, VENV_BIN
from bench.load import (
    TCP_LISTEN,
    connections_per_process,
    figures,
    histogram_parse,
    histogram_percentile,
    rounds_compare,
    tcp_sockets,
)
from bench.report import _load_md, targets_evaluate
from bench.run import arguments
from bench.web import procfile_default, procfile_web_argv

CLIENTS = 50


def _raw(*, requests: int, seconds: float = 10.0, latencies_us: dict[int, int] | None = None,
         web_cpu_seconds: float = 1.0, errors: int = 0, server: dict | None = None) -> dict:
    """One wrk run as bench/load.py `_load_once` records it."""
    return {
        "requests": requests,
        "duration_seconds": seconds,
        "histogram_us": Counter(latencies_us or {50_000: requests}),
        "wrk_percentiles_us": {},
        "error_kinds": {"connect": 0, "read": 0, "write": 0, "status": errors, "timeout": 0},
        "wall_seconds": seconds + 0.1,
        "server": server or {"seconds": {"initial": [0.002, 0.004]}, "statuses": {"200": requests}},
        "web_cpu_seconds": web_cpu_seconds,
        "busy_jiffies": (190, 200),
        "wrk_cpu_seconds": 2.0,
    }


def test_histogram_percentile_is_wrks_rank_rule():
    # wrk: the smallest value whose cumulative count reaches round(p/100 × n + 0.5), C's round (half up).
    histogram = histogram_parse("100:1,200:1,300:1,400:1")  # n = 4
    assert histogram == Counter({100: 1, 200: 1, 300: 1, 400: 1})
    assert histogram_percentile(histogram, 50) == 300  # rank round(2.5) = 3, not 2
    assert histogram_percentile(histogram, 95) == 400  # rank round(4.3) = 4
    assert histogram_percentile(histogram, 10) == 100  # rank round(0.9) = 1
    assert histogram_percentile(Counter(), 95) == 0


def test_pooled_percentiles_are_of_every_request_not_an_average_of_percentiles():
    fast = _raw(requests=90, latencies_us={10_000: 90})
    slow = _raw(requests=10, latencies_us={500_000: 10})
    pooled = figures([fast, slow], clients=CLIENTS, cores=2)
    # 100 requests, 90 at 10 ms: p50 is 10 ms, p95 500 ms; the mean of the two runs' p95s would be 255 ms.
    assert pooled["latency_ms"]["p50"] == 10.0
    assert pooled["latency_ms"]["p95"] == 500.0
    assert pooled["latency_ms"]["mean"] == 59.0
    assert pooled["latency_ms"]["max"] == 500.0
    assert pooled["requests"] == 100
    assert pooled["throughput_rps"] == 5.0  # 100 requests in 20 s
    assert pooled["cpu"]["web_cpu_ms_per_request"] == 20.0  # 2 s of web CPU for 100 requests
    assert pooled["server"]["server_ms"]["initial"]["n"] == 4  # both runs' access logs
    assert pooled["server"]["statuses"] == {"200": 100}


def test_rounds_ratio_is_the_median_of_the_rounds_and_the_sides_are_pooled():
    orders = [["floor", "dashboard"], ["dashboard", "floor"], ["floor", "dashboard"]]
    pairs = [
        # The machine slowed down during round 2's floor: that round's ratio is off, the median is not.
        (_raw(requests=10_000, web_cpu_seconds=12.0), _raw(requests=8_000, web_cpu_seconds=14.4)),
        (_raw(requests=4_000, web_cpu_seconds=4.8), _raw(requests=8_000, web_cpu_seconds=14.4)),
        (_raw(requests=10_000, web_cpu_seconds=12.0), _raw(requests=7_000, web_cpu_seconds=12.6)),
    ]
    compared = rounds_compare(pairs, clients=CLIENTS, orders=orders, cores=2)
    assert [r["throughput_ratio"] for r in compared["rounds"]] == [0.8, 2.0, 0.7]
    assert [r["order"] for r in compared["rounds"]] == orders
    assert [r["web_cpu_ratio"] for r in compared["rounds"]] == [1.5, 1.5, 1.5]
    vs = compared["vs_floor"]
    assert vs["throughput_ratio"] == 0.8  # median of 0.8, 2.0, 0.7
    assert vs["web_cpu_ratio"] == 1.5
    assert vs["of"] == "median of 3 rounds"
    assert vs["pooled"]["throughput_ratio"] == round(23_000 / 24_000, 2)
    assert compared["floor"]["requests"] == 24_000 and compared["dashboard"]["requests"] == 23_000


def _load_section(pairs: list[tuple[dict, dict]]) -> dict:
    """A load section as bench/load.py `run` writes it, from these rounds."""
    orders = [["floor", "dashboard"] if i % 2 == 0 else ["dashboard", "floor"] for i in range(len(pairs))]
    compared = rounds_compare(pairs, clients=CLIENTS, orders=orders, cores=2)
    return {
        "clients": CLIENTS, "seconds": 10 * len(pairs), "round_seconds": 10, "wrk_threads": 2,
        "web": {"workers": 2, "threads": 4}, "endpoints": ["initial", "holdings", "chart"],
        **compared["dashboard"],
        "floor": {**compared["floor"], "answer_bytes": [500, 200_000, 100_000]},
        "floor_tiny": {**figures([pairs[0][0]], clients=CLIENTS, cores=2), "answer_bytes": 28},
        "rounds": compared["rounds"],
        "vs_floor": compared["vs_floor"],
    }


def test_targets_judge_the_median_ratio_and_the_dashboards_pooled_rounds():
    pairs = [
        (_raw(requests=10_000), _raw(requests=8_000, latencies_us={40_000: 7_000, 60_000: 1_000})),
        (_raw(requests=4_000), _raw(requests=8_000, latencies_us={40_000: 7_600, 60_000: 400})),
        (_raw(requests=10_000), _raw(requests=6_000, latencies_us={40_000: 6_000}, errors=2)),
    ]
    load = _load_section(pairs)
    targets = {t.id: t for t in targets_evaluate({"sections": {"load": load}})}
    # L1: the median of 0.8, 2.0 and 0.6, met; the pooled ratio (22,000 / 24,000) is not what is judged.
    assert targets["L1"].met and targets["L1"].result.startswith("0.80×, median of 3 rounds (0.60–2.00×)")
    # L3 and L4 over the dashboard's three rounds pooled: 1,400 of 22,000 requests at 60 ms is p95 60 ms.
    assert load["latency_ms"]["p95"] == 60.0
    assert not targets["L3"].met and targets["L3"].what == "50 clients × 3 × 10 s, p95"
    assert not targets["L4"].met and targets["L4"].result == "2 of 22,000"


def test_report_shows_each_round_and_says_how_the_ratio_was_made():
    pairs = [(_raw(requests=10_000), _raw(requests=8_000)), (_raw(requests=5_000), _raw(requests=5_000))]
    text = "\n".join(_load_md(_load_section(pairs)))
    assert "alternate in 2 rounds of 10 s each side" in text
    assert "| 1 | floor → dashboard | 1000.0 req/s | 800.0 req/s | 0.8× |" in text
    assert "| 2 | dashboard → floor | 500.0 req/s | 500.0 req/s | 1.0× |" in text
    assert "Dashboard over floor (median of the rounds): throughput 0.9×" in text
    assert "Rounds pooled: throughput 0.87×" in text


def test_the_bench_runs_the_web_server_as_the_procfile_does_unless_told_and_says_which():
    procfile = (ROOT / "Procfile").read_text()
    assert "--workers ${WEB_CONCURRENCY:-2} --blocking-threads ${WEB_THREADS:-4}" in procfile
    assert (procfile_default("WEB_CONCURRENCY"), procfile_default("WEB_THREADS")) == (2, 4)
    assert (arguments([]).web_workers, arguments([]).web_threads) == (2, 4)
    with pytest.raises(RuntimeError, match="NO_SUCH_SETTING"):
        procfile_default("NO_SUCH_SETTING")
    # The Procfile's own command, from this virtualenv, bound where asked; every other option as written.
    argv = procfile_web_argv(port=18123, workers=3, threads=5)
    assert argv[0] == str(VENV_BIN / "granian")
    assert " ".join(argv[1:]) == ("--interface wsgi config.wsgi:application --host 127.0.0.1 --port 18123 --workers 3 "
                                  "--blocking-threads 5 --respawn-failed-workers --access-log")
    defaults = procfile_web_argv(port=18123)
    assert defaults[defaults.index("--workers") + 1] == "2"
    assert defaults[defaults.index("--blocking-threads") + 1] == "4"
    pairs = [(_raw(requests=10_000), _raw(requests=8_000))]
    load = _load_section(pairs)
    assert "granian (2 workers × 4 threads), " in "\n".join(_load_md(load))
    load["web"] = {"workers": 2, "threads": 4, "procfile_defaults": True}
    assert "granian (2 workers × 4 threads, the Procfile's defaults), " in "\n".join(_load_md(load))


def test_the_report_says_how_the_connections_fell_to_the_web_processes():
    floor, dashboard = _raw(requests=10_000), _raw(requests=8_000)
    floor["connections_per_process"], dashboard["connections_per_process"] = [20, 30], [26, 24]
    text = "\n".join(_load_md(_load_section([(floor, dashboard), (_raw(requests=9_000), _raw(requests=7_000))])))
    # most first, the floor's runs then the dashboard's; a run sampled too early to find any is left out
    assert "halfway through each run, floor's then dashboard's: 30/20, 26/24 (of 50)" in text
    assert "halfway" not in "\n".join(_load_md(_load_section([(_raw(requests=1), _raw(requests=1))])))


def test_connections_per_process_counts_the_connections_a_process_accepted():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        try:
            # established, but not accepted yet: in the listening socket's queue, held by no process
            assert connections_per_process([os.getpid()], port=port) == [0]
            accepted = [server.accept()[0] for _ in range(2)]
            # this process's ends of the two it accepted (its clients' own ends have another local port)
            assert connections_per_process([os.getpid(), os.getppid()], port=port) == [2, 0]
            accepted[0].close()
            assert connections_per_process([os.getpid()], port=port) == [1]
            assert len(tcp_sockets(port, state=TCP_LISTEN)) == 1
            accepted[1].close()
        finally:
            for client in clients:
                client.close()
