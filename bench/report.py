"""Targets (met or missed, judged from the run's own numbers) and the two outputs of a run:
bench/results/latest.json and docs/PERFORMANCE.md. Every number in the Markdown comes from the
results; the prose around a missed target is chosen by which target missed and filled with the
run's figures and profile."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.env import ROOT
from bench.provenance import output_paths


@dataclass
class Target:
    id: str
    section: str
    what: str
    target: str
    result: str
    baseline: str
    met: bool
    profile: str | None = None  # which profile explains a miss
    reason: Callable[[dict], tuple[str, str]] | None = None  # (why, next step) from the results
    notes: list[str] = field(default_factory=list)


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{unit}"


# --- targets


def targets_evaluate(results: dict) -> list[Target]:
    sections = results.get("sections", {})
    found: list[Target] = []
    if "refresh" in sections:
        found += _refresh_targets(sections["refresh"])
    if "dashboard" in sections:
        found += _dashboard_targets(sections["dashboard"])
    if "chart" in sections:
        found += _chart_targets(sections["chart"], sections.get("dashboard"))
    if "indexes" in sections:
        found += _index_targets(sections["indexes"])
    if "load" in sections:
        found += _load_targets(sections["load"])
    if "browser" in sections:
        found += _browser_targets(sections["browser"])
    if "intraday" in sections:
        found += _intraday_targets(sections["intraday"])
    # Short stable ids by section, in table order: R1…, D1…, C1…, I1, L1…, B1…
    counters: dict[str, int] = {}
    for target in found:
        prefix = _PREFIXES[target.section]
        counters[prefix] = counters.get(prefix, 0) + 1
        target.id = f"{prefix}{counters[prefix]}"
    return found


ENDPOINT_NAMES = ("initial", "holdings", "chart")
_PREFIXES = {"refresh": "R", "dashboard": "D", "chart": "C", "indexes": "I", "load": "L", "browser": "B",
             "intraday": "S"}


def _refresh_targets(r: dict) -> list[Target]:
    one, many, p = r["one_portfolio"], r["shared_portfolios"], r["params"]
    complete = one["state"] == "SUCCESS" and one["stored"] == p["instruments"]
    return [
        Target("R1", "refresh", f"Refresh of {p['instruments']:,} instruments at {p['rate_per_second']:g} req/s "
               f"(burst {p['burst']}), enqueue → SUCCESS, all stored",
               "≤ 1.25 × physical bound", f"{one['wall_seconds']:.2f} s = {r['vs_bound']:.2f} × bound",
               f"bound {r['bound_seconds']:.2f} s (steady state {r['steady_bound_seconds']:.2f} s)",
               complete and 0.98 <= r["vs_bound"] <= 1.25, reason=_reason_refresh_bound),
        Target("R2", "refresh", "Speed-up over the naive per-symbol refresh (paced by the same limit)", "≥ 40×",
               f"{r['speedup_vs_naive']:.0f}×",
               f"naive {r['naive_extrapolated_seconds']:.0f} s (extrapolated from {r['naive']['symbols']} symbols)",
               complete and r["speedup_vs_naive"] >= 40, reason=_reason_refresh_naive),
        Target("R3", "refresh", "Provider requests made", f"= ceil({p['instruments']:,} / {p['batch_size']}) = "
               f"{r['expected_requests']}", str(one["requests"]), f"naive: 1 per symbol = {p['instruments']:,}",
               one["requests"] == r["expected_requests"], reason=_reason_generic),
        Target("R4", "refresh", f"Requests with {p['shared_portfolios']:,} portfolios sharing the instruments",
               f"same as one portfolio ({one['requests']})", str(many["requests"]),
               f"{r['shared_setup']['transactions']:,} holdings", many["requests"] == one["requests"]
               and many["state"] == "SUCCESS", reason=_reason_generic),
    ]


def _page_cold_p50(d: dict) -> float:
    """A cold dashboard as the page loads it from nothing cached, until totals and holdings are shown:
    the initial request computes both answers, the holdings request then finds the one it needs."""
    return d["page_cold"]["totals_and_holdings"]["p50"]


# The web server the Procfile runs, as the report names it; the dashboard section's transports by their results' keys.
SERVER = "granian"
_TRANSPORT_LABELS = {"test_client": "test client", "server": SERVER}


def _page_warm_p50(d: dict) -> float:
    return sum(d[name]["warm"]["p50"] for name in ("initial", "holdings", "chart"))


def _dashboard_targets(d: dict) -> list[Target]:
    found = []
    for transport, label in _TRANSPORT_LABELS.items():
        label += ", loopback" if transport == "server" else ""
        m = d[transport]
        naive = f"naive view p50 {_fmt(d[transport + '_naive']['p50'], ' ms', 0)}"
        found += [
            Target(f"D-warm-{transport}", "dashboard", f"initial-data p95, warm cache ({label})", "≤ 15 ms",
                   _fmt(m["initial"]["warm"]["p95"], " ms", 2), naive,
                   m["initial"]["warm"]["p95"] <= 15, profile="initial_warm", reason=_reason_initial_warm),
            Target(f"D-cold-{transport}", "dashboard", f"initial-data p95, cold cache ({label})", "≤ 100 ms",
                   _fmt(m["initial"]["cold"]["p95"], " ms", 1), naive,
                   m["initial"]["cold"]["p95"] <= 100, profile="dashboard_cold", reason=_reason_dashboard_cold),
        ]
    gu = d["server"]["initial"]
    cold_vs_warm = gu["cold"]["p95"] / gu["warm"]["p95"]
    found.append(Target("D-cold-vs-warm", "dashboard", f"initial-data p95, cold over warm ({SERVER})", "≤ 3×",
                        f"{cold_vs_warm:.1f}× ({_fmt(gu['cold']['p95'], ' ms', 1)})",
                        f"warm p95 {_fmt(gu['warm']['p95'], ' ms', 2)}, same run", cold_vs_warm <= 3,
                        profile="dashboard_cold", reason=_reason_dashboard_cold))
    for transport, label in _TRANSPORT_LABELS.items():
        m, naive = d[transport], d[transport + "_naive"]
        for kind, what, page in (("warm", "Dashboard (3 requests, warm)", _page_warm_p50(m)),
                                 ("cold", "Totals and holdings from nothing cached", _page_cold_p50(m))):
            speedup = naive["p50"] / page
            found.append(Target(
                f"D-naive-{kind}-{transport}", "dashboard", f"{what} vs naive view ({label})", "≥ 50× faster",
                f"{speedup:.0f}× ({_fmt(page, ' ms', 1)})", f"naive p50 {_fmt(naive['p50'], ' ms', 0)}",
                speedup >= 50, profile=f"dashboard_{kind}",
                reason=_reason_dashboard_cold if kind == "cold" else _reason_dashboard_warm))
    whole = d["server"]["page_cold"]["with_chart"]["p50"]
    naive = d["server_naive"]["p50"]
    found.append(Target(
        "D-page-cold", "dashboard", f"Whole page from nothing cached, chart generated ({SERVER})",
        "sooner than the naive view", f"{_fmt(whole, ' ms', 0)} = {naive / whole:.1f}× faster",
        f"naive p50 {_fmt(naive, ' ms', 0)}", whole < naive, reason=_reason_page_cold))
    q = d["queries"]
    constant = all(q["large"][name] == q["small"][name] for name in q["large"])
    counts = ", ".join(f"{name} {c['warm']}/{c['cold']}" for name, c in q["large"].items())
    found.append(Target("D-queries", "dashboard", f"SQL queries per request, {q['small_holdings']} vs "
                        f"{q['large_holdings']} holdings", "constant", f"{'equal' if constant else 'differ'}: "
                        f"{counts} (warm/cold)", f"naive view: {d['test_client_naive']['queries']} queries",
                        constant, reason=_reason_generic))
    return found


def _chart_targets(c: dict, dashboard: dict | None) -> list[Target]:
    naive = f"naive chart in the request {_fmt(dashboard['test_client_naive']['chart_ms'], ' ms', 0)}" \
        if dashboard else "–"
    return [
        Target("C-time", "chart", "Chart generation in the worker (p95 of runs)", "≤ 150 ms",
               _fmt(c["worker_ms"]["p95"], " ms", 0), naive, c["worker_ms"]["p95"] <= 150,
               profile="chart", reason=_reason_chart),
        Target("C-memory", "chart", "Worker peak memory (resident, whole process)", "≤ 200 MB",
               _fmt(c["worker_peak_rss_mb"], " MB", 0), f"idle worker {_fmt(c['worker_idle_rss_mb'], ' MB', 0)}",
               c["worker_peak_rss_mb"] <= 200, profile="chart", reason=_reason_chart),
        *_new_day_target(c),
    ]


def _new_day_target(c: dict) -> list[Target]:
    """The issue's chart update after one new day's closes. Until a generation can append a day, a new day
    is a full generation with this year's rows read again: measured as such and judged against the target."""
    new_day = c.get("new_day_worker_ms", {})
    if not new_day.get("n"):
        return []
    return [Target("C-new-day", "chart", "Chart updated after one new day's closes, in the worker (p95 of runs)",
                   "≤ 20 ms", _fmt(new_day["p95"], " ms", 0),
                   f"same-day generation p95 {_fmt(c['worker_ms']['p95'], ' ms', 0)}", new_day["p95"] <= 20,
                   profile="chart_new_day", reason=_reason_new_day)]


def _processes(count: int) -> str:
    return "one process" if count == 1 else f"{count} processes"


def _intraday_targets(i: dict) -> list[Target]:
    p = i["params"]
    return [
        Target("S-intraday", "intraday",
               f"Charts and totals of {p['portfolios']:,} portfolios × {p['holdings']} holdings current after an "
               f"intraday refresh of all {p['instruments']:,} instruments ({p['chart_workers']} chart workers; "
               f"from the refresh's end: charts current, then every total and live point made by "
               f"{_processes(p.get('read_processes', 1))})",
               "≤ 60 s", _fmt(i["after_refresh"]["seconds"], " s", 1),
               f"full regeneration of all {_fmt(i['full_regeneration']['seconds'], ' s', 1)} "
               f"({_fmt(i['speedup_vs_full_regeneration'], '×', 2)})",
               # current means the live point too: no regeneration, and every sampled chart on its total
               i["after_refresh"]["seconds"] <= 60 and not i["intraday"].get("charts_regenerated")
               and i["totals"]["chart_ends_on_dashboard_total"] == i["totals"]["checked"],
               reason=_reason_intraday),
    ]


def _index_targets(ix: dict) -> list[Target]:
    hot = {name: q for name, q in ix["queries"].items() if q["expects_index"]}
    used = all(q["index_used"] for q in hot.values())
    ratios = [q["ratio"] for q in hot.values()]
    return [Target("I-used", "indexes", "Hot price-history reads use an index (EXPLAIN ANALYZE)",
                   "every hot read", f"{sum(q['index_used'] for q in hot.values())} of {len(hot)}",
                   f"without indexes {min(ratios):,.0f}× to {max(ratios):,.0f}× slower", used,
                   reason=_reason_generic)]


def _load_rounds_said(load: dict) -> str:
    """How the ratios to the floor were made: `median of 3 rounds (0.61–0.70×)`, or nothing for a single run."""
    rounds = load.get("rounds") or []
    values = [r["throughput_ratio"] for r in rounds if r.get("throughput_ratio") is not None]
    if len(values) < 2:
        return ""
    return f", median of {len(rounds)} rounds ({min(values):.2f}–{max(values):.2f}×)"


def _load_duration(load: dict) -> str:
    rounds = load.get("rounds") or []
    if len(rounds) > 1:
        return f"{len(rounds)} × {load['round_seconds']} s"
    return f"{load['seconds']} s"


def _load_targets(load: dict) -> list[Target]:
    single = load.get("single_client_p95_ms")
    baseline = f"1 client p95 ≤ {_fmt(max(single.values()), ' ms', 1)}" if single else "–"
    floor, vs = load["floor"], load["vs_floor"]
    p95_values = [r["p95_ratio"] for r in load.get("rounds") or [] if r.get("p95_ratio") is not None]
    p95_said = (f", median of {len(p95_values)} rounds ({min(p95_values):.2f}–{max(p95_values):.2f}×)"
                if len(p95_values) > 1 else "")
    return [
        Target("L-floor-rps", "load", f"{load['clients']} clients, dashboard throughput over the framework floor's "
               "(same answer sizes)",
               "≥ 0.7×", f"{vs['throughput_ratio']:.2f}×{_load_rounds_said(load)} "
                        f"({_fmt(load['throughput_rps'], ' req/s', 0)})",
               f"floor {_fmt(floor['throughput_rps'], ' req/s', 0)}", vs["throughput_ratio"] >= 0.7,
               profile="dashboard_warm", reason=_reason_floor),
        Target("L-floor-p95", "load",
               f"{load['clients']} clients, dashboard p95 over the framework floor's (same answer sizes)",
               "≤ 1.5×", f"{vs['p95_ratio']:.2f}×{p95_said} ({_fmt(load['latency_ms']['p95'], ' ms', 0)})",
               f"floor p95 {_fmt(floor['latency_ms']['p95'], ' ms', 0)}", vs["p95_ratio"] <= 1.5,
               profile="dashboard_warm", reason=_reason_floor),
        Target("L-p95", "load", f"{load['clients']} clients × {_load_duration(load)}, p95", "≤ 50 ms",
               f"{_fmt(load['latency_ms']['p95'], ' ms', 0)} at {_fmt(load['throughput_rps'], ' req/s', 0)}",
               baseline, load["latency_ms"]["p95"] <= 50, profile="dashboard_warm", reason=_reason_load),
        Target("L-errors", "load", f"{load['clients']} clients × {_load_duration(load)}, errors", "0",
               f"{load['errors']} of {load['requests']:,}", f"statuses {load['server']['statuses']}",
               load["errors"] == 0 and set(load["server"]["statuses"]) <= {"200"}, reason=_reason_load_errors),
    ]


def _browser_targets(b: dict) -> list[Target]:
    naive = f"naive page {_fmt(b['naive_totals_ms']['p50'], ' ms', 0)}" if b.get("naive_totals_ms") else "–"
    return [
        Target("B-totals", "browser", "Navigation → totals visible (Chromium, warm, p95)", "≤ 300 ms",
               _fmt(b["totals_ms"]["p95"], " ms", 0), naive, b["totals_ms"]["p95"] <= 300,
               profile="dashboard_warm", reason=_reason_browser),
        Target("B-chart", "browser", "Navigation → chart drawn (Chromium, warm, p95)", "≤ 1 s",
               _fmt(b["chart_ms"]["p95"], " ms", 0), naive, b["chart_ms"]["p95"] <= 1000,
               profile="dashboard_warm", reason=_reason_browser),
    ]


# --- reasons and next steps for missed targets


def _profile_lines(results: dict, name: str | None) -> str:
    return _profile_text(results.get("profiles", {}).get(name or ""))


def _profile_text(prof: dict | None) -> str:
    if not prof:
        return ""
    top = "; ".join(f"`{f['function']}` {f['percent']} %" for f in prof["top"][:6])
    first = prof["top"][0] if prof["top"] else {}
    if first.get("calls"):
        top += (" (the first one's biggest calls: "
                + ", ".join(f"`{c['call']}` {c['percent']} %" for c in first["calls"]) + ")")
    packages = ", ".join(f"{p['package']} {p['percent']} %" for p in prof.get("packages", [])[:6])
    return (f" Profile (pyinstrument, {prof['operations']} operations, "
            f"{prof['ms_per_operation_profiled']} ms each while profiled) — share of the time in each of the "
            f"project's functions, library calls they make included: {top}."
            + (f" Own time by package: {packages}." if packages else ""))


def _contention(results: dict, section: str) -> str:
    """What else ran on the cores during a section (the machine is shared; its noise shows in p95)."""
    cpu = results.get("sections_cpu", {}).get(section)
    if not cpu:
        return ""
    return (f" During this section the machine's cores were busy {cpu['machine_cores_busy']} on average, "
            f"{cpu['bench_processes_cores']} of it in the bench's own processes and {cpu['rest_cores']} in Postgres, "
            "Redis and any other work on the machine.")


def _reason_generic(results: dict) -> tuple[str, str]:
    return ("The measured value is outside the target; see the section's table for the figures.",
            "Profile the operation (pyinstrument) and fix the hot spot it shows, then run `make bench` again.")


def _reason_refresh_bound(results: dict) -> tuple[str, str]:
    r = results["sections"]["refresh"]
    one = r["one_portfolio"]
    below = (" Finishing below a physical bound means the bound is wrong: check the burst the bucket really "
             "allows (prices/providers/pacing.py) against the one this report assumed."
             if r["vs_bound"] < 0.98 else "")
    return (f"The job took {one['wall_seconds']:.2f} s against a bound of {r['bound_seconds']:.2f} s; the provider "
            f"saw {one['requests']} requests at {one['observed_rate']} req/s with at most {one['max_in_flight']} in "
            f"flight; planning and enqueueing took {one['enqueue_seconds']:.2f} s." + below,
            "Profile a batch task in the worker (`py-spy record -p <worker pid>`) and remove what runs between "
            "the provider's answer and the batch's record (prices/refresh/jobs.py prices_refresh_batch_run).")


def _reason_page_cold(results: dict) -> tuple[str, str]:
    d = results["sections"]["dashboard"]
    page = d["server"]["page_cold"]
    chart = results["sections"].get("chart", {}).get("worker_ms", {}).get("p50")
    why = (f"From nothing cached, totals and holdings are shown after {page['totals_and_holdings']['p50']} ms, but the "
           f"chart only after {page['with_chart']['p50']:.0f} ms: the first chart request queues its generation at "
           "once (no chart to serve meanwhile: no debounce), then the page waits for the worker to generate it"
           + (f" ({chart:.0f} ms p50 in section 3)" if chart else "") + ". The naive view computes one range, "
           "with no worker, in the request.")
    step = ("Make the generation itself cheaper (section 3): it is all that stands between the first request "
            "and the chart.")
    return why, step


def _reason_floor(results: dict) -> tuple[str, str]:
    load = results["sections"]["load"]
    floor, vs = load["floor"], load["vs_floor"]
    server = load["server"]["server_ms"]
    rounds = load.get("rounds") or []
    each = ("" if len(rounds) < 2 else
            f" In {len(rounds)} alternating rounds the dashboard/floor throughput ratios were "
            + ", ".join(f"{r['throughput_ratio']}×" for r in rounds)
            + f" (median {vs['throughput_ratio']}×) and the web CPU ratios "
            + ", ".join(f"{r['web_cpu_ratio']}×" for r in rounds) + ".")
    why = (f"Under the same {load['clients']}-client load the framework floor (a DRF view returning constant bytes "
           f"behind the same middleware and token authentication) answered {floor['throughput_rps']} req/s at p95 "
           f"{floor['latency_ms']['p95']} ms using {floor['cpu']['web_cpu_ms_per_request']} ms of web CPU per "
           f"request; the dashboard endpoints {load['throughput_rps']} req/s at p95 {load['latency_ms']['p95']} ms "
           f"with {load['cpu']['web_cpu_ms_per_request']} ms ({vs['web_cpu_ratio']}× the floor's CPU)." + each
           + " Server time per endpoint under load (p50): "
           + ", ".join(f"{k} {v['p50']} ms" for k, v in server.items() if k in ENDPOINT_NAMES)
           + "." + _contention(results, "load") + _profile_lines(results, "dashboard_warm"))
    return why, _load_next_step(results)


def _reason_refresh_naive(results: dict) -> tuple[str, str]:
    r = results["sections"]["refresh"]
    return (f"Naive per symbol {r['naive']['per_symbol_ms']} ms; the batched job "
            f"{r['one_portfolio']['wall_seconds']} s.",
            "See R1: the batched job is what must get faster.")




def replay_outdated_line(d: dict, transport: str) -> str | None:
    """Information beside D5/D7/D9, not a target: a cold read with the kept replay outdated too, as after the
    user's own trade (bench/dashboard.py `cold_replay_reset`), through one transport. None for results from
    before it was measured."""
    replayed = (d.get(transport) or {}).get("cold_replay_outdated")
    naive = (d.get(transport + "_naive") or {}).get("p50")
    if not replayed or not naive:
        return None
    initial, page, kept = replayed["initial"], replayed["totals_and_holdings"]["p50"], _page_cold_p50(d[transport])
    return (f"Cold with the replay outdated too (after a trade, {_TRANSPORT_LABELS[transport]}): initial data p50 "
            f"{_fmt(initial['p50'], ' ms', 1)} / p95 {_fmt(initial['p95'], ' ms', 1)}; totals and holdings p50 "
            f"{_fmt(page, ' ms', 1)}, {_naive_times(d, transport, page)} faster than the naive view (cold with the "
            f"replay kept: {_fmt(kept, ' ms', 1)}, {_naive_times(d, transport, kept)})")


def _naive_times(d: dict, transport: str, ms: float) -> str:
    return f"{d[transport + '_naive']['p50'] / ms:.0f}×"


def replay_outdated_lines(d: dict) -> list[str]:
    """replay_outdated_line of each transport measured."""
    return [line for transport in _TRANSPORT_LABELS if (line := replay_outdated_line(d, transport))]


def _reason_dashboard_cold(results: dict) -> tuple[str, str]:
    d = results["sections"]["dashboard"]
    tc, gu = d["test_client"]["initial"]["cold"], d["server"]["initial"]["cold"]
    transactions = d["portfolio"]["transactions"]
    replayed = {transport: (d[transport].get("cold_replay_outdated") or {}).get("initial")
                for transport in ("test_client", "server")}
    if all(replayed.values()):
        after_trade = (f" A read after a write that outdates the replay — the user's own trade, an FX rate on or "
                       f"before a transaction's date, an account's cash tracking — replays all {transactions:,} "
                       "transactions (and the cash trades they imply) in the request and keeps the result: initial "
                       f"data test client p50 {replayed['test_client']['p50']} ms / p95 "
                       f"{replayed['test_client']['p95']} ms, {SERVER} p50 {replayed['server']['p50']} ms / p95 "
                       f"{replayed['server']['p95']} ms; totals and holdings "
                       + ", ".join(f"{_naive_times(d, t, d[t]['cold_replay_outdated']['totals_and_holdings']['p50'])}"
                                   f" faster than the naive view ({label}; "
                                   f"{_naive_times(d, t, _page_cold_p50(d[t]))} with the replay kept)"
                                   for t, label in _TRANSPORT_LABELS.items())
                       + " (information beside the targets, not one).")
    else:
        after_trade = (f" A read after a write that outdates the replay (the user's own trade) replays all "
                       f"{transactions:,} transactions in the request; this run did not measure it.")
    why = (f"A cold read recomputes the valuation in the request ({d['portfolio']['holdings']} holdings): it reads "
           f"the portfolio's replay of its {transactions:,} transactions kept in Postgres (portfolio/kept.py, one "
           "row, current unless a write outdated it; decoded once per web process, which keeps the replays it "
           "decoded last: KEPT_REPLAYS_MB) and values it with today's closes and FX rates, as it does "
           "after a price refresh or a Redis flush: test client p50 "
           f"{tc['p50']} ms / p95 {tc['p95']} ms, {SERVER} p50 {gu['p50']} ms / p95 {gu['p95']} ms." + after_trade
           + " A cold dashboard (its three requests) is mostly that computation, hence its smaller lead over the "
           "naive view." + _contention(results, "dashboard") + _profile_lines(results, "dashboard_cold"))
    warm = d["server"]["initial"]["warm"]["p95"]
    step = (f"D5 allows a cold read {3 * warm:.1f} ms (3 × the warm p95). A cold read no longer replays the "
            f"{transactions:,} transactions unless a write outdated the kept replay; what it still does is read "
            f"and value the {d['portfolio']['holdings']} holdings' instruments with their latest closes and FX rates, "
            "and build the answers, per request.")
    alone = d["test_client"].get("compute_alone")
    if alone:
        over = alone["p50"] > 3 * warm
        step += (f" That computation alone, timed in the bench's process with no request, authentication or cache "
                 f"around it (portfolio/dashboard.py `dashboard_data_compute`), takes p50 {alone['p50']} ms / p95 "
                 f"{alone['p95']} ms" + (": more than D5 allows the whole request. No web tier meets D5 while a cold "
                                         "read computes in the request; only one that does not compute would."
                                         if over else "."))
    step += (" (1) Stale-while-revalidate: serve the "
             "previous version's answers, marked outdated, while a worker recomputes them (D5 met), at the price that "
             "after your own trade you would first see the old totals: a product decision, and a 'cold' read would "
             "then no longer be cold.")
    cheaper = []
    if (share := _hot(results, "dashboard_cold", "portfolio_valuation_get")) is not None and share >= 15:
        source = _function_source(ROOT / "portfolio" / "selectors.py", "portfolio_valuation_get")
        calls = next((f.get("calls", []) for f in results["profiles"]["dashboard_cold"]["top"]
                      if f["function"].startswith("portfolio_valuation_get")), [])
        biggest = calls[0] if calls else {"call": "", "percent": 0}
        if "manager_method" in biggest["call"] and "in_bulk(" in source:
            cheaper.append(f"`portfolio_valuation_get` ({share} %, portfolio/selectors.py), above all its "
                           f"`Instrument.objects.in_bulk` ({biggest['percent']} % in `{biggest['call']}`): "
                           f"{d['portfolio']['holdings']} model instances per read; fetch only the fields the "
                           "valuation and payload use (`values_list` or `only()`), or keep instruments, which "
                           "rarely change, in a per-process cache keyed by id")
        elif "select_related" in source:
            cheaper.append(f"`portfolio_valuation_get` itself ({share} %, portfolio/selectors.py) — most of it the "
                           f"ORM building the {d['portfolio']['transactions']:,} transactions with their "
                           "instruments: read them as `values_list` tuples plus one instrument query")
        else:
            cheaper.append(f"`portfolio_valuation_get` itself ({share} %, portfolio/selectors.py): start with its "
                           "biggest calls named in the profile above")
    if (share := _hot(results, "dashboard_cold", "_instruments_query")) is not None and share >= 10:
        cheaper.append(f"`_instruments_query` ({share} %, prices/selectors.py): the holdings' instruments and their "
                       "two newest closes, read as plain InstrumentRow tuples already: what is left is the query "
                       "(the instruments joined with their row of the latest closes, which the price table's "
                       "triggers keep) and its rows")
    calendar = sum(_hot(results, "dashboard_cold", name) or 0
                   for name in ("_minute", "price_stale", "price_is_stale", "last_expected_close_date"))
    if calendar >= 2:
        cheaper.append(f"the staleness check per holding ({calendar:.1f} % in prices/market_calendar.py and "
                       "prices/refresh/stale.py, pandas Timestamps on every call): ask for the last expected close "
                       "once per exchange per request")
    if cheaper:
        step += " (2) Make the computation cheaper, by the profile: " + "; ".join(cheaper) + "."
    step += " Then `make bench` again."
    return why, step


def _reason_initial_warm(results: dict) -> tuple[str, str]:
    d = results["sections"]["dashboard"]
    tc, gu = d["test_client"]["initial"]["warm"], d["server"]["initial"]["warm"]
    why = (f"A warm initial-data request is a cache hit, yet it costs test client p50 {tc['p50']} ms / p95 "
           f"{tc['p95']} ms ({SERVER} p50 {gu['p50']} / p95 {gu['p95']} ms): the token's user, the portfolio's "
           "owner and version (as the process last read them from Postgres, confirmed by their copy), the cached "
           "answer's bytes and the history progress, all from Redis in one round trip, and the framework's own "
           "request handling (section 5 compares it with the framework floor)."
           + _contention(results, "dashboard") + _profile_lines(results, "initial_warm"))
    return why, _load_next_step(results, profile="initial_warm")


def _reason_dashboard_warm(results: dict) -> tuple[str, str]:
    d = results["sections"].get("dashboard", {})
    chart = d.get("server", {}).get("chart", {}).get("warm", {})
    why = (f"Warm requests send their cached answers as stored (the chart answer is "
           f"{_fmt(chart.get('bytes', 0) / 1024, ' KB', 0)}, p50 {chart.get('p50')} ms), yet each still pays the "
           "round trips named below." + _profile_lines(results, "dashboard_warm"))
    return why, _load_next_step(results)


def _hot(results: dict, profile: str, prefix: str) -> float | None:
    """The share (%) of a project function in a profile's hot list, None when it is not there."""
    top = (results.get("profiles", {}).get(profile) or {}).get("top", [])
    return next((f["percent"] for f in top if f["function"].startswith(prefix)), None)


def _load_next_step(results: dict, *, profile: str = "dashboard_warm") -> str:
    """What to change, chosen by what the warm-request profile shows, biggest share first; each step is
    what the code as it now is still does on a warm read."""
    steps: list[tuple[float, str]] = []
    chart = results["sections"].get("dashboard", {}).get("server", {}).get("chart", {}).get("warm", {})
    probe = [share for name in ("portfolio_access_probe", "_run (core/postgres/prepared")
             if (share := _hot(results, profile, name)) is not None]
    if (share := round(sum(probe), 1)) >= 10:
        steps.append((share, f"the owner and version probe (`portfolio_access_probe`, portfolio/access.py, {share} %), "
                             "which a warm read makes only when Redis's copy of those numbers does not confirm what "
                             "its process last read (its first read of the portfolio, after a write, or once the "
                             "copy expired: PORTFOLIO_ACCESS_CACHE_SECONDS): that it shows this much means the "
                             "copies were withdrawn or expired often during the run — find which"))
    redis_reads = [(name, share) for name in ("_warm_read (portfolio/api/views", "_token_load (config/authentication",
                                              "cached (core/query_cache", "portfolio_history_progress",
                                              "chart_answer_get", "chart_parts_get")
                   if (share := _hot(results, profile, name)) is not None]
    if sum(share for _, share in redis_reads) >= 15:
        steps.append((sum(share for _, share in redis_reads), "the Redis reads of a warm read ("
                      + ", ".join(f"`{n.split(' ')[0]}` {s} %" for n, s in redis_reads)
                      + "): the token's user and the answer already share one pipeline (`_warm_read`); what "
                        "is left is redis-py's own cost per round trip and decoding the cached user, which the "
                        "floor pays too"))
    counters = [(name, share) for name in ("timing_record", "add (core/query_cache", "add (core/middleware")
                if (share := _hot(results, profile, name)) is not None and share >= 3]
    if counters:
        steps.append((sum(share for _, share in counters), "the statistics' flushes ("
                      + ", ".join(f"`{n.split(' ')[0]}` {s} %" for n, s in counters)
                      + ", monitoring/): they are buffered per process already; flush them from a background "
                        "thread instead of the request that finds the interval over"))
    if (share := _hot(results, profile, "__call__ (core/middleware")) is not None and share >= 15:
        steps.append((share, f"Django's and DRF's own request and response handling (charged to the outermost "
                             f"middleware of ours, `__call__` in core/middleware.py, {share} %): the framework "
                             "floor pays it too (section 5); the Content-Security-Policy header and DRF's choice "
                             "of renderer are made once per process already (core/csp.py, config/negotiation.py); "
                             "what is left is Django's handler, the middleware chain and DRF's request wrapping: "
                             "fewer middleware for the API would lower both"))
    steps.sort(key=lambda step: -step[0])
    if chart.get("bytes", 0) > 200 * 1024:
        steps.append((0.0, f"and the chart answer is {chart['bytes'] / 1024:,.0f} KB for one range: send the "
                           "sparklines and allocation once (their own request), not with every range"))
    if not steps:
        return "Follow the profile's top functions above, then `make bench` again and compare the web CPU per request."
    return ("By the profile, biggest share first: " + "; ".join(text for _, text in steps)
            + ". Then `make bench` again and compare the web CPU per request.")


def _reason_load(results: dict) -> tuple[str, str]:
    load = results["sections"]["load"]
    cores = results["machine"]["cores"] or 1
    cpu = load["cpu"]["web_cpu_ms_per_request"]
    ceiling = cores * 1000 / cpu if cpu else None
    server = load["server"]["server_ms"]
    single = load.get("single_client_p95_ms") or {}
    needed_rps = load["clients"] / 0.050
    why = (f"The run is a closed loop of {load['clients']} connections with no think time on {cores} cores that "
           f"{SERVER}, Postgres, Redis and wrk share: the machine was {load['cpu']['machine_busy_percent']} % busy "
           f"and the web tier used {cpu} ms of CPU per request, so at most ~{_fmt(ceiling, '', 0)} requests/s fit "
           f"if it had the machine to itself (measured {load['throughput_rps']}: the web tier's processes used "
           f"{cpu * load['throughput_rps'] / 1000:.2f} of the {load['cpu']['machine_busy_percent'] * cores / 100:.2f} "
           "busy cores, Postgres, Redis, wrk and any other work on the machine the rest); by Little's law the mean "
           "latency is then clients / throughput = "
           f"{load['littles_law_mean_ms']} ms, and p95 {load['latency_ms']['p95']} ms. Server time per request "
           f"under load (access log, p50): " + ", ".join(f"{k} {v['p50']} ms" for k, v in server.items() if k in
                                                        ("initial", "holdings", "chart"))
           + " against " + ", ".join(f"{k} {v} ms" for k, v in single.items()) + " p95 with a single client: the "
           "difference is waiting for a core." + _contention(results, "load")
           + _profile_lines(results, "dashboard_warm"))
    floor = load["floor"]
    if floor["latency_ms"]["p95"] > 50:
        # The floor does none of our work: when it misses too, the machine is the bound, not the dashboard.
        why += (f" The framework floor itself, which does none of the dashboard's work, answered this load at p95 "
                f"{floor['latency_ms']['p95']} ms ({floor['throughput_rps']} req/s): over the target before any code "
                "of ours runs, so on this machine no dashboard could meet it; the ratios to the floor (L1, L2) are "
                "the figures that carry to another machine.")
    budget = cores * 1000 / needed_rps
    step = (f"p95 ≤ 50 ms for {load['clients']} closed-loop clients needs ≥ {needed_rps:,.0f} requests/s, i.e. at "
            f"most ~{budget:.1f} ms of CPU per request on {cores} cores including Postgres and Redis"
            + (f" — {(1 - budget / cpu) * 100:.0f} % less than the {cpu} ms now. " if cpu > budget else ". ")
            + _load_next_step(results))
    return why, step


def _reason_intraday(results: dict) -> tuple[str, str]:
    i = results["sections"]["intraday"]
    after, read = i["after_refresh"], i["read_pass"]
    why = (f"After the refresh's last quote was stored, the charts were current in {after['charts_current_seconds']} s "
           f"({i['intraday'].get('charts_regenerated')} regenerated: today's closes are live, not history); the rest "
           f"is the read pass, {read['seconds']} s: every one of the {i['params']['portfolios']:,} portfolios' totals "
           f"and live point made once by {_processes(read.get('processes', 1))}, {read['per_portfolio_ms']} ms of the "
           "pass's wall time per portfolio."
           + _contention(results, "intraday") + _profile_text(i.get("read_pass_profile")))
    step = ("The read pass is a cold dashboard valuation per portfolio (its instruments and latest closes, its "
            "transactions, the holdings' arithmetic) and the writes that cache it: cut what the profile's first "
            "functions spend, then `make bench` again.")
    return why, step


def _reason_load_errors(results: dict) -> tuple[str, str]:
    load = results["sections"]["load"]
    other = {k: v for k, v in load["server"]["statuses"].items() if k != "200"}
    why = (f"wrk counted {load['errors']} errors ({', '.join(f'{k} {v}' for k, v in load['error_kinds'].items())}); "
           f"the server's access log has answers other than 200: {other or 'none'}.")
    if "202" in other:
        why += (" A 202 is the chart endpoint saying the chart is not in the cache (it then queues a generation, "
                "which no worker runs during the load run): the chart the run generated beforehand was not found by "
                "the server's code.")
    return why, ("Read var/bench/web-load-access.log and var/bench/web-load.log for the failing answers; fix, then "
                 "`make bench` again.")


def _function_source(path, name: str) -> str:
    """The text of a top-level function in a file (empty when absent): advice must fit the code as it is."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    start = text.find(f"\ndef {name}(")
    if start < 0:
        return ""
    end = text.find("\ndef ", start + 1)
    return text[start:end if end > 0 else None]


def _reason_chart(results: dict) -> tuple[str, str]:
    c = results["sections"]["chart"]
    query = results["sections"].get("indexes", {}).get("queries", {}).get("chart_series")
    new_day = c.get("new_day_worker_ms", {})
    why = (f"Generation took p95 {c['worker_ms']['p95']:.0f} ms with a peak of {c['worker_peak_rss_mb']} MB "
           f"({c['peak_over_idle_mb']} MB over the idle worker), the worker's closes kept from its previous run; "
           f"first run in a fresh worker (every close read) {c['first_run_seconds'] * 1000:.0f} ms"
           + (f", after a new day's closes (this year's series rows read again) p50 {new_day['p50']:.0f} ms"
              if new_day.get("n") else "") + "." + _contention(results, "chart")
           + _profile_lines(results, "chart"))
    if query:
        why += (f" Its {results['sections']['indexes']['price_rows']:,} closes are read packed a year per row "
                f"(prices/series.py, docs/charts.md): {query['with_index']['ms']:.0f} ms of Postgres when the worker "
                "keeps none of them (EXPLAIN ANALYZE, section 4).")
    step = ("A generation from nothing kept (what C1 times, as after a trade) is spread over many steps of a few "
            "milliseconds each (the profile above): the transactions' load and replay, the days × instruments "
            "grids, the exact valuations of the reported days, the performance ranges, the parts' JSON. An intraday "
            "change no longer regenerates (today's point is made when read), and a new day takes again what its "
            "closes leave as it was (C3; docs/charts.md, \"Exact valuations kept by the chart worker\"): what is "
            "left to a full generation is what a trade changes, the replay first (a trade dated in the past changes "
            "every position after it). Replaying only from the edited trade's date on, from the kept states before "
            "it, is the next step; then `make bench` again.")
    return why, step


def _reason_new_day(results: dict) -> tuple[str, str]:
    c = results["sections"]["chart"]
    new_day = c["new_day_worker_ms"]
    why = (f"A new day's closes give this year's series row of every instrument a new revision (the bench moves the "
           f"last close of each of the portfolio's {c.get('new_day_closes_moved', 0):,} instruments by a cent): p50 "
           f"{new_day['p50']:.0f} ms, p95 {new_day['p95']:.0f} ms, against p95 {c['worker_ms']['p95']:.0f} ms for a "
           "generation the same day from nothing kept, as after a trade. The worker takes again what the new closes "
           "leave as it was (charts/valuations_kept.py; docs/charts.md, \"Exact valuations kept by the chart "
           "worker\"): the transactions as loaded (the portfolio's replay version unchanged: none is read), their "
           "replay, the value grid's days before 1 January (the year whose series rows were sent again: only this "
           "year's days are made), what later steps make of the book alone (the totals of the flows and of the "
           "invested line, the trades as arrays), the figures of the performance ranges that ended before today "
           "(the past calendar years, while their inputs' digest is the same), and the exact valuations of the days "
           "before the new closes (the bench's today does not move, so the 1Y and 5Y bases, which a real new day "
           "values anew, are reused too). What it still does in full: read the instruments, ask Postgres in one "
           "statement which series rows are new (this year's are sent) and make the closes' arrays again from the "
           "kept rows and those, value today and the day before, then every chart range, the performance ranges "
           "ending today, the sparklines, their JSON and the cached hash — each a few milliseconds for 500 "
           "holdings × 10 years."
           + _profile_lines(results, "chart_new_day"))
    step = ("The rest of an append (docs/charts.md, \"Next\"): read only the new day's closes rather than this "
            "year's rows, and patch the daily ranges' and the sparklines' text in the cached hash rather than "
            "rewrite it; then `make bench` again.")
    return why, step


def _reason_browser(results: dict) -> tuple[str, str]:
    b = results["sections"]["browser"]
    server = results["sections"].get("dashboard", {}).get("server", {})
    initial = server.get("initial", {}).get("warm", {}).get("p50")
    totals = b["totals_ms"]
    why = (f"Totals appear at p50 {totals['p50']} ms (min {totals['min']}, p95 {totals['p95']}), "
           f"holdings at {b['holdings_ms']['p50']} ms, the chart at {b['chart_ms']['p50']} ms after navigation; the "
           f"shell's HTML has arrived at {b['shell_response_end_ms']['p50']} ms and the totals request alone takes "
           f"{initial} ms (one client, section 2), so most of the time is the page's own start-up."
           + _contention(results, "browser") + _profile_lines(results, "dashboard_warm"))
    step = ("Record a Chromium trace (Playwright `tracing.start(screenshots=False, snapshots=False)`) to split "
            "network, script and rendering time.")
    script = ROOT / "static" / "js" / "dashboard.js"
    if script.exists() and re.search(r"await loadHoldings\(\);\s*await loadChart", script.read_text()):
        step += (" static/js/dashboard.js asks for the chart only after the holdings table is rendered (`start()` "
                 "awaits loadHoldings, then loadChart): ask for both once the totals are in.")
    return why, step + " " + _load_next_step(results)


# --- outputs


def results_write(results: dict, *, docs: bool = True, experiment: bool = False) -> list[Path]:
    """Write the JSON (and the Markdown): into the repository for a run at a clean commit, into
    var/bench/results/ for an experiment (bench/provenance.py). Returns the paths written."""
    targets = targets_evaluate(results)
    results["targets"] = [{"id": t.id, "what": t.what, "target": t.target, "result": t.result,
                           "baseline": t.baseline, "met": t.met} for t in targets]
    path, doc = output_paths(experiment=experiment)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    tmp.replace(path)
    written = [path]
    if docs:
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text(markdown(results, targets))
        written.append(doc)
    return written


def summary_text(results: dict) -> str:
    lines = [f"bench: finished in {results['total_seconds']} s"]
    targets = results.get("targets", [])
    info = replay_outdated_lines(results.get("sections", {}).get("dashboard") or {})
    last_dashboard = max((n for n, t in enumerate(targets) if t["id"].startswith("D")), default=len(targets) - 1)
    for n, t in enumerate(targets):
        lines.append(f"  {'met   ' if t['met'] else 'MISSED'} {t['id']:<22} {t['what']}: {t['result']} "
                     f"(target {t['target']})")
        if n == last_dashboard:
            lines += [f"  info   {line}" for line in info]
    if not targets:
        lines += [f"  info   {line}" for line in info]
    for section, error in results.get("errors", {}).items():
        lines.append(f"  ERROR  {section}: {error.splitlines()[0]}")
    return "\n".join(lines)


def _status(met: bool) -> str:
    return "✅ met" if met else "❌ missed"


def markdown(results: dict, targets: list[Target]) -> str:
    m = results["machine"]
    s = results["sections"]
    out = [
        "# Performance",
        "",
        f"Generated by `make bench` at commit `{results.get('commit') or 'unknown'}`"
        f"{'' if results.get('clean_tree', True) else ' **with uncommitted changes (an experiment)**'}"
        f" (committed {results.get('commit_date') or '–'}), run from {results['started_at']} to "
        f"{results.get('finished_at') or '–'} (whole run {results['total_seconds']:.0f} s). "
        "Every number below was measured and written by that run (`bench/`, raw figures in "
        "`bench/results/latest.json`); do not edit by hand — run `make bench` again, from a clean tree (it "
        "refuses otherwise). Each figure is a ratio or stands next to a baseline measured in the same run, "
        "because one machine's absolute numbers say little about another's.",
        "",
        "## Machine",
        "",
        f"| CPU | cores | memory | OS | Python | Django | Postgres | Redis | {SERVER} | Chromium | wrk |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {m['cpu_model']} | {m['cores']} | {m['memory_gib']} GiB | {m['os']} | {m['python']} | {m['django']} | "
        f"{m['postgres']} (shared_buffers {m['postgres_shared_buffers']}) | {m['redis']} | {m.get(SERVER, '–')} | "
        f"{(m.get('chromium') or '–').split(' built')[0]} | {(m.get('wrk') or '–').split(' [')[0]} |",
        "",
        f"Everything — Postgres, Redis, the Celery workers, {SERVER}, Chromium and the load generator — ran on "
        "this one machine, over loopback. Load average (1 min) when the run started: "
        f"{_fmt(m.get('load_average_at_start'), '', 2)}, when it ended: {_fmt(m.get('load_average_at_end'), '', 2)} "
        "(anything above the bench's own processes is other work sharing the cores)."
        + (" On average over the run the machine had {machine_cores_busy} of its cores busy: {bench_processes_cores} "
           "in the bench's own processes (workers, {server}, Chromium, wrk, this runner), {rest_cores} in Postgres "
           "and Redis serving them and in other work on the machine.".format(server=SERVER, **m["cpu_during_run"])
           if m.get("cpu_during_run") else ""),
        "",
        *_cpu_table(results),
        "## How to run",
        "",
        "```",
        "make bench                                   # all of it, the issue's sizes (about 15 minutes on 2 cores)",
        "make bench-quick                             # small sizes, same code paths, deterministic checks (CI)",
        "make bench BENCH_ARGS=--allow-dirty          # an experiment on uncommitted changes: var/bench/results/",
        ".venv/bin/python -m bench.run --help         # sizes and sample counts are options",
        ".venv/bin/python -m bench.run --instruments 10000 --holdings 2000 --load-clients 200   # a bigger machine",
        "```",
        "",
        f"This run: `python -m bench.run{''.join(' ' + a for a in results['argv']) or ''}`"
        f"{'' if results['argv'] else ' (the defaults)'}. It uses its own Postgres database "
        f"(`{results.get('bench_database', 'folio_bench')}`, recreated each run; `BENCH_DATABASE_URL`) and Redis "
        f"database {results.get('bench_redis_db', 11)} (`BENCH_REDIS_URL`), servers on free ports 18000-18999, and "
        "installs `wrk` and `chromium` from Debian when they are missing.",
        "",
        "## Targets",
        "",
        "| | measurement | target | result | baseline (same run) | |",
        "|---|---|---|---|---|---|",
    ]
    for t in targets:
        out.append(f"| {t.id} | {t.what} | {t.target} | {t.result} | {t.baseline} | {_status(t.met)} |")
    if info := replay_outdated_lines(s.get("dashboard") or {}):
        out += ["", "Beside the dashboard's cold targets, for information (not targets):", ""]
        out += [f"- {line}." for line in info]
    missed = [t for t in targets if not t.met]
    errors = results.get("errors", {})
    if errors:
        out += ["", "Sections that failed to run (their targets are absent above):", ""]
        out += [f"- **{name}**: `{error.splitlines()[0]}`" for name, error in errors.items()]
    out += ["", "## Missed targets: why, and what to do next", ""]
    if not missed:
        out.append("None: every target measured in this run was met.")
    # Targets missed for the same reason share one explanation.
    groups: dict[object, list[Target]] = {}
    for t in missed:
        groups.setdefault(t.reason or _reason_generic, []).append(t)
    shown_profiles: set[str] = set()
    for reason, group in groups.items():
        why, step = reason(results)
        out.append("### " + ", ".join(t.id for t in group) + " — " + group[0].what.rsplit(" (", 1)[0])
        out += [""] + [f"- {t.id}: {t.what}: **{t.result}** (target {t.target})" for t in group]
        if reason is _reason_dashboard_cold:
            out += [f"- {line} (information, not a target)" for line in
                    replay_outdated_lines(results["sections"]["dashboard"])]
        out += ["", f"**Why.** {why}", "", f"**Next step.** {step}", ""]
        prof = results.get("profiles", {}).get(group[0].profile or "")
        if prof and prof.get("tree") and group[0].profile not in shown_profiles:
            shown_profiles.add(group[0].profile)
            out += ["<details><summary>Profile: " + prof["name"] + "</summary>", "", "```", prof["tree"], "```", "",
                    "</details>", ""]
    out += _refresh_md(s.get("refresh"))
    out += _dashboard_md(s.get("dashboard"), results.get("dataset"))
    out += _chart_md(s.get("chart"))
    out += _indexes_md(s.get("indexes"))
    out += _load_md(s.get("load"))
    out += _browser_md(s.get("browser"))
    out += _intraday_md(s.get("intraday"))
    out += _method_md(results)
    return "\n".join(out).rstrip() + "\n"


def _cpu_table(results: dict) -> list[str]:
    rows = results.get("sections_cpu") or {}
    if not rows:
        return []
    return ["Cores busy on average during each section (of " + str(results["machine"]["cores"]) + "):", "",
            "| section | whole machine | bench's own processes | Postgres, Redis and other work |",
            "|---|---|---|---|",
            *[f"| {name} | {c['machine_cores_busy']} | {c['bench_processes_cores']} | {c['rest_cores']} |"
              for name, c in rows.items()], ""]


def _refresh_md(r: dict | None) -> list[str]:
    if not r:
        return []
    p, one, many = r["params"], r["one_portfolio"], r["shared_portfolios"]
    return [
        "## 1. Price refresh",
        "",
        f"{p['instruments']:,} Yahoo-priced instruments refreshed through a real Celery worker "
        f"(threads pool, concurrency {p['worker_concurrency']}) against the loopback Yahoo stub "
        f"(`tests/stubs/market.py`) answering after {p['latency_ms']:.0f} ms, {p['batch_size']} symbols per "
        f"request, global limit {p['rate_per_second']:g} requests/s with a burst of {p['burst']} "
        + ("(the product's default Yahoo pacing" if p.get("rate_is_product_default") else
           "(**not** the product's default Yahoo pacing: `--rate` overrode it")
        + "; `YAHOO_REQUESTS_PER_SECOND`, `YAHOO_BATCH_SIZE`). Wall time from the enqueue (planning included) to "
        "the job's SUCCESS, then every price checked in Postgres. Each portfolio has the default account a "
        "user's gets, tracking cash, holding its transactions.",
        "",
        "| run | wall | vs bound | provider requests | max in flight | observed rate | stored | after SUCCESS |",
        "|---|---|---|---|---|---|---|---|",
        f"| 1 portfolio | {one['wall_seconds']:.2f} s | {r['vs_bound']:.2f} × | {one['requests']} | "
        f"{one['max_in_flight']} | {one['observed_rate']} req/s | {one['stored']:,} | {one['after_work_seconds']} s |",
        f"| {p['shared_portfolios']:,} portfolios sharing them ({r['shared_setup']['transactions']:,} holdings) | "
        f"{many['wall_seconds']:.2f} s | {r['shared_vs_bound']:.2f} × | {many['requests']} | {many['max_in_flight']} "
        f"| {many['observed_rate']} req/s | {many['stored']:,} | {many['after_work_seconds']} s |",
        f"| naive: one request per symbol, sequential, one save each, paced by the same limit | "
        f"{r['naive_extrapolated_seconds']:.1f} s "
        f"(extrapolated) | {r['naive_extrapolated_seconds'] / r['bound_seconds']:.0f} × | {p['instruments']:,} | 1 | "
        f"– | – | – |",
        "",
        f"- Physical bound: the token bucket starts full, so its {p['burst']} burst request(s) go at once, the "
        "others at the rate, and the last answer arrives one latency after it was asked for: max((requests − "
        f"burst) / rate + latency, requests × latency / concurrency) = max(({r['expected_requests']} − {p['burst']}) "
        f"/ {p['rate_per_second']:g} + {p['latency_ms'] / 1000:g}, {r['expected_requests']} × "
        f"{p['latency_ms'] / 1000:g} / {p['worker_concurrency']}) = **{r['bound_seconds']:.2f} s**. No run can "
        "finish below it; R1 asks for at most 25 % above it (planning, storing, after-work).",
        f"- Steady state, with the bucket empty (refreshes back to back): requests / rate = "
        f"**{r['steady_bound_seconds']:.2f} s**; this run took {r.get('vs_steady_bound', 0):.2f} × that.",
        f"- Naive baseline measured on **{r['naive']['symbols']} symbols** ({r['naive']['seconds']:.2f} s, "
        f"{r['naive']['per_symbol_ms']} ms per symbol unpaced) and extrapolated linearly to {p['instruments']:,}: "
        "its cost per symbol is constant (one round trip and one save), and it may not ask faster than the "
        f"provider's limit either, so each symbol costs max(that, 1 / rate) = {r['naive'].get('paced_per_symbol_ms')} "
        f"ms. Speed-up: **{r['speedup_vs_naive']:.0f}×** — the batching (one request per {p['batch_size']} "
        "symbols) is what it measures.",
        f"- \"after SUCCESS\": the job's after-work in the worker (version bumps and chart regeneration requests "
        f"for every portfolio touched) — {many['after_work_seconds']} s for {p['shared_portfolios']:,} portfolios.",
        "",
    ]


def _endpoint_rows(m: dict) -> list[str]:
    rows = []
    for name in ("initial", "holdings", "chart"):
        w, c = m[name]["warm"], m[name]["cold"]
        rows.append(f"| {name} | {w['p50']} | {w['p95']} | {c['p50']} | {c['p95']} | {w['bytes'] / 1024:,.1f} KB |")
    return rows


def _page_cold_row(page: dict) -> str:
    return (f"| cold page: totals shown / holdings shown / chart drawn | {page['totals']['p50']} / "
            f"{page['totals_and_holdings']['p50']} / {page['with_chart']['p50']:,.0f} | – | – | – | "
            f"{page['with_chart']['n']} pages |")


def _dashboard_md(d: dict | None, dataset: dict | None) -> list[str]:
    if not d:
        return []
    q = d["queries"]
    out = [
        "## 2. Dashboard",
        "",
        f"One portfolio of {d['portfolio']['holdings']} holdings, {d['portfolio']['transactions']:,} transactions, "
        f"{d['portfolio']['price_rows']:,} daily closes"
        + (f" ({dataset['sessions']:,} NYSE sessions, {dataset['first_date']} to {dataset['last_date']})"
           if dataset else "") + ". Made as a user's portfolio is (`portfolio_create`), with its default account, "
        "which tracks cash: every transaction is in that account, so each buy, sell and dividend moves its cash, "
        "which the valuation, the chart and the naive view count as a holding of its own. Milliseconds.",
        "",
        "- **Warm**: every cache holds the answer — the token's user, the dashboard answers (as the JSON "
        "sent), the chart. A warm request is one Redis round trip and no query: the token's user, the "
        "portfolio's owner and versions as its web process last read them from Postgres (confirmed by their "
        "copy in Redis, which every write updates) and the answer.",
        "- **Cold**: nothing the page needs is cached. Before each cold request the portfolio's data version is "
        "bumped as a refresh of today's quotes bumps it (the chart's history version stays, as after that refresh: "
        "no regeneration is queued), the token's cached user is forgotten and the chart is deleted. "
        "Totals and holdings are then computed in the request; a cold chart request is timed until "
        "the chart arrives — its 202, the generation in a real Celery worker (queued at once: with no chart to "
        "serve meanwhile there is nothing to debounce), the 200. The portfolio's replay of its transactions stays "
        "kept in Postgres (`portfolio/kept.py`), as after a price refresh or a Redis flush: a cold read values it "
        "without replaying (and, in a web process that decoded that replay before, without decoding it again: "
        "`KEPT_REPLAYS_MB`).",
        "- **Cold, replay outdated too** (as after the user's own trade): the same reset, and the kept replay "
        "outdated as a trade's trigger does it (its replay version + 1, the data unchanged, so both value the same "
        "portfolio): the request replays every transaction again. Information beside the targets, not a target.",
        "- Before any timing, each web process computed a cold answer once (the small portfolio's, "
        f"untimed by the figures: {d.get('process_warm_up_ms', '–')} ms): what a fresh process loads the first "
        "time (modules not yet imported, first-touch costs; the market calendars are loaded as the process "
        "starts) is its start-up, not a cold cache.",
        "- **Cold page**: the three requests in the page's order from that state: totals (computes and caches "
        "both answers), holdings (finds its answer cached by the totals request of the same page load), then "
        "the chart until it arrives.",
        "- **Naive view** (`bench/naive.py`): totals, holdings and the 1Y chart computed in one request the "
        "simplest way — one query per holding for its latest close, then per holding the closes of the "
        "366-day window and its last close before it, every day of the window summed as Decimals; the "
        "account's cash replayed by the product's own rule (`portfolio.cash.cash_expand`) and worth 1 a dollar. "
        "It computes exactly what it returns; the run fails unless its total value, total cost, number of "
        "holdings and every point of its 1Y chart equal the product's.",
        "",
    ]
    for transport, title in (("test_client", "Django test client (server time, no network)"),
                             ("server", f"{SERVER} over loopback ({d['web']['workers']} workers × "
                                          f"{d['web']['threads']} threads, one client, round trip)")):
        naive = d[transport + "_naive"]
        ratios = d[transport + "_ratios"]
        out += [f"**{title}**", "",
                "| endpoint | warm p50 | warm p95 | cold p50 | cold p95 | answer |", "|---|---|---|---|---|---|",
                *_endpoint_rows(d[transport]),
                f"| naive view (totals + chart in the request) | {naive['p50']} | {naive['p95']} | – | – | "
                f"{naive['n']} runs |",
                "",
                _page_cold_row(d[transport]["page_cold"]),
                "",
                f"Speed-up over the naive view (p50 over p50): totals {ratios['initial_speedup_warm']:.0f}× warm; the "
                f"whole dashboard (its three requests) {naive['p50'] / _page_warm_p50(d[transport]):.0f}× warm "
                f"({_page_warm_p50(d[transport]):.1f} ms); from nothing cached, totals and holdings "
                f"{naive['p50'] / _page_cold_p50(d[transport]):.0f}× ({_page_cold_p50(d[transport]):.1f} ms) and "
                f"the whole page with its chart {naive['p50'] / d[transport]['page_cold']['with_chart']['p50']:.1f}× "
                f"({d[transport]['page_cold']['with_chart']['p50']:,.0f} ms). Initial data cold over warm, p95: "
                f"{ratios.get('initial_cold_vs_warm_p95')}×.", ""]
        if line := replay_outdated_line(d, transport):
            out += [f"{line}.", ""]
    out += ["SQL queries per request (warm / cold):", "",
            f"| endpoint | {q['small_holdings']} holdings | {q['large_holdings']} holdings |", "|---|---|---|"]
    out += [f"| {name} | {q['small'][name]['warm']} / {q['small'][name]['cold']} | "
            f"{q['large'][name]['warm']} / {q['large'][name]['cold']} |" for name in q["large"]]
    out += [f"| naive view | – | {d['test_client_naive']['queries']} |", "",
            f"The naive view spends {d['test_client_naive']['totals_ms']:,.0f} ms on totals (one query per holding) "
            f"and {d['test_client_naive']['chart_ms']:,.0f} ms on the 1Y chart (two queries per holding, the "
            "window's closes as Decimals, every day summed in Python). Query counts are the same whatever the "
            "number of holdings: a cold chart request answers 202 without reading any chart input (the worker "
            "reads them).", ""]
    return out


def _chart_md(c: dict | None) -> list[str]:
    if not c:
        return []
    points = ", ".join(f"{k} {v}" for k, v in c["series_points"].items())
    new_day = c.get("new_day_worker_ms", {})
    return [
        "## 3. Chart generation",
        "",
        "`charts.generate_chart_data_task` for the dashboard portfolio in a real Celery worker (solo pool, so the "
        "task runs in the process whose memory is read: peak resident set `VmHWM` from `/proc`). A chart worker "
        "process keeps the close histories it read, up to `PRICE_SERIES_CACHE_MB`, and asks Postgres only which of "
        "their series rows (a year of an instrument each) changed since (prices/series.py, docs/charts.md): the "
        "timed runs are the production case, the chart made again the same day with nothing changed (no bytes "
        "sent, the kept arrays used as they are), in a worker that keeps no exact valuations "
        "(`CHART_KEPT_VALUATIONS_MB=0`): every day valued again, as after a trade. The cache is cold in a fresh "
        "worker (the first run: every close read and decoded, with the imports and first-touch costs) and after a "
        "new day's closes, which give this year's row of every instrument a new revision: those rows are sent again "
        "and the arrays made again with the rows kept (timed apart, in a worker as configured, which reuses the "
        "valuations of the days before the new closes, the transactions' replay, the value grid's earlier days and "
        "the flows' totals: charts/valuations_kept.py; "
        "before each run the last close "
        f"of each of the portfolio's {c.get('new_day_closes_moved', 0):,} instruments is moved by a cent, and put "
        "back after). Any other change of closes (a backfill, a correction) "
        "sends the rows from its year on.",
        "",
        "| runs | worker time p50 | p95 | enqueue → stored p50 | first run in a fresh worker (cold) | after a new "
        "day's closes p50 | idle RSS | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
        f"| {c['runs']} | {c['worker_ms']['p50']:.0f} ms | {c['worker_ms']['p95']:.0f} ms | "
        f"{c['end_to_end_ms']['p50']:.0f} ms | {c['first_run_seconds'] * 1000:.0f} ms | "
        + (f"{new_day['p50']:.0f} ms ({new_day['n']} runs)" if new_day.get("n") else "–")
        + f" | {c['worker_idle_rss_mb']} MB | {c['worker_peak_rss_mb']} MB |",
        "",
        f"Output: points per range {points}; {c['sparklines']} sparklines; {c['cached_payload_kb']:,.0f} KB cached.",
        "",
    ]


def _intraday_md(i: dict | None) -> list[str]:
    if not i:
        return []
    p, t = i["params"], i["totals"]
    return [
        "## 7. Intraday refresh at scale",
        "",
        f"{p['portfolios']:,} portfolios of {p['holdings']} holdings over {p['instruments']:,} instruments with "
        f"{p['history_days']} days of closes, each portfolio with the default account a user's gets (tracking "
        f"cash) holding its buys; real workers: prices ({p['prices_worker_threads']} threads, stub "
        f"provider at {p['latency_ms']:.0f} ms), charts (prefork, {p['chart_workers']} processes). Every chart is "
        "first generated in full (the baseline: the full-regeneration path over the whole population, this run); "
        "then a refresh of every instrument's quote (the stub dates it inside today's New York session, whatever "
        "the hour the bench runs at) is started as the 5-minute beat job starts it, and timed until "
        "the job is done and every portfolio's cached chart is current: the history of today for its present "
        "history version (today's closes are live and regenerate nothing; each chart's last point is made from the "
        "dashboard's valuation when it is read — docs/charts.md; `bench/intraday.py`).",
        "",
        "| full regeneration of all charts | per portfolio | intraday refresh → all current | of which the refresh "
        "job | charts regenerated by it | ratio |",
        "|---|---|---|---|---|---|",
        f"| {i['full_regeneration']['seconds']} s | {i['per_portfolio_ms']['full_regeneration']} ms | "
        f"{i['intraday']['seconds']} s | {i['intraday']['job_seconds']} s | "
        f"{i['intraday'].get('charts_regenerated', '—')} | {_fmt(i['speedup_vs_full_regeneration'], '×', 2)} |",
        "",
        f"Totals: {t['chart_ends_on_dashboard_total']} of {t['checked']} sampled charts end, as the chart API serves "
        "them, on their dashboard total, which is the valuation at the refreshed quotes.",
        "",
        *([f"Read pass: every portfolio's live chart point and totals made once, as the first reads after the "
           f"refresh make them (a dashboard valuation each, then the live point), by "
           f"{_processes(i['read_pass'].get('processes', 1))} each taking an equal share (forked from the runner, "
           "as web processes would serve those first reads on the machine's cores): "
           f"{i['read_pass']['seconds']} s, {i['read_pass']['per_portfolio_ms']} ms of wall time per portfolio — "
           "work the product spreads over the reads of the portfolios actually viewed.", ""]
          if "read_pass" in i else []),
        *([f"S1 counts from the refresh's end: the refresh job itself ({i['intraday']['job_seconds']} s) is the "
           "provider's pacing at the product's default rate (section 1, R1, bounds it) and the same whatever the "
           f"number of portfolios; after it, the charts were current in {i['after_refresh']['charts_current_seconds']} "
           f"s and every total and live point was made in {i['after_refresh']['read_pass_seconds']} s more: "
           f"{i['after_refresh']['seconds']} s in all. From the refresh's start to all current, "
           f"{i['intraday']['seconds'] + i['after_refresh']['read_pass_seconds']:.1f} s.", ""]
          if "after_refresh" in i else []),
    ]


def _indexes_md(ix: dict | None) -> list[str]:
    if not ix:
        return []
    out = [
        "## 4. Indexes",
        "",
        "Every read of price history the product runs on a hot path, its SQL captured from the product's own "
        "function (named in the table) and run under `EXPLAIN (ANALYZE, "
        f"BUFFERS)` on Postgres, {ix['price_rows']:,} rows, {ix['instruments']} instruments; median of 3 warm runs. "
        "Without: `pricehistory_instrument_date_uniq` and the unique keys of its two mirrors (the packed series, "
        "the latest closes) dropped inside a transaction that is rolled back. "
        "Indexes of the tables in this run: " + ", ".join(f"`{name}`" for name in ix.get("indexes", [])) + " — "
        "every read names its instruments, so the (instrument, date) index serves them all (the by-date and "
        "by-update indexes no query used were dropped: migration prices 0004).",
        "",
        "| query | runs in | with index | plan | without | plan | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for q in ix["queries"].values():
        wo = q["without_index"]
        note = " ¹" if wo.get("extrapolated_from") else ""
        out.append(f"| {q['what']} | `{q.get('runs_in', '–')}` | {q['with_index']['ms']:,.2f} ms | "
                   f"{', '.join(q['with_index']['scans'])} | "
                   f"{wo['ms']:,.1f} ms{note} | {', '.join(wo['scans'])} | {q['ratio']:,.1f}× |")
    out += ["", f"¹ One scan per instrument without the index: measured on {ix['subset']} instruments and "
            f"extrapolated linearly to {ix['instruments']}.",
            "The chart's bulk read takes nearly every row, so the index only saves the sort there; it is not a "
            "hot point read and is not expected to need one. Nor is the valuation's read of the latest closes: one "
            "row per instrument of their mirror (prices.LatestClose, migration prices 0008), joined by primary key, "
            "which Postgres hashes whole when a portfolio holds most of the instruments stored.", ""]
    return out


def _load_row(name: str, run: dict) -> str:
    lat = run["latency_ms"]
    return (f"| {name} | {run['requests']:,} | {run['throughput_rps']} req/s | {lat['p50']} ms | {lat['p90']} ms | "
            f"{lat['p95']} ms | {lat['p99']} ms | {lat['max']} ms | {run['errors']} | "
            f"{run['cpu']['machine_busy_percent']} % | {run['cpu']['web_cpu_ms_per_request']} ms |")


def _load_md(load: dict | None) -> list[str]:
    if not load:
        return []
    server = load["server"]["server_ms"]
    rounds = load.get("rounds") or []
    alternating = len(rounds) > 1
    defaults = ", the Procfile's defaults" if load["web"].get("procfile_defaults") else ""
    out = [
        "## 5. Load",
        "",
        f"`wrk -t{load['wrk_threads']} -c{load['clients']} -d{load.get('round_seconds', load['seconds'])}s` against "
        f"{SERVER} ({load['web']['workers']} workers × {load['web']['threads']} threads{defaults}), "
        "each connection cycling through initial, holdings and chart (1Y) data of the dashboard portfolio, warm, "
        "no think time (closed loop). The same load runs on the **framework floor** (`bench/floor.py`: a DRF "
        "view returning constant bytes behind the same web server, middleware and token authentication — the "
        "cheapest authenticated answer this stack gives), so the dashboard's cost beyond the framework is a "
        "ratio measured in the same run. "
        + (f"Floor and dashboard alternate in {len(rounds)} rounds of {load['round_seconds']} s each side "
           "(floor then dashboard, then dashboard then floor, …): a shared machine's speed can swing by a fifth and "
           "more from one half-minute to the next, so one floor run then one dashboard run would mostly measure "
           "the swing. The targets' ratios are the median of the rounds' ratios; the rows below pool each side's "
           "rounds (requests added, wrk's latency histograms merged: percentiles of every request). "
           if alternating else "")
        + "The three answers are cached again just before each dashboard run "
        "(they live 60 s and would have expired during the floor's runs), so it opens warm and, unless it lasts "
        "longer than 60 s, no answer expires during it: what an expiry costs under load, one recompute that the "
        "requests for that answer wait on, is the cold read of section 2, not measured here. "
        "The floor the targets compare with answers as many bytes as the "
        f"dashboard's three answers ({', '.join(f'{b:,}' for b in load['floor'].get('answer_bytes', []))} bytes, "
        "cycled the same way): what is left is our code's work, not the size of the answers. The tiny floor "
        "(a few bytes, one run"
        + (" of a round's length" if alternating else "") + ") shows what carrying those bytes costs by itself.",
        "",
        "| run | requests | throughput | p50 | p90 | p95 | p99 | max | errors | machine busy | web CPU per request |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *([_load_row("framework floor, a few bytes", load["floor_tiny"])] if load.get("floor_tiny") else []),
        _load_row("framework floor, the dashboard's answer sizes" + (", rounds pooled" if alternating else ""),
                  load["floor"]),
        _load_row("dashboard (3 endpoints)" + (", rounds pooled" if alternating else ""), load),
        "",
    ]
    if alternating:
        out += [
            "| round | order | floor | dashboard | throughput ratio | floor p95 | dashboard p95 | p95 ratio "
            "| web CPU per request, floor / dashboard | web CPU ratio |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *(f"| {i} | {' → '.join(r['order'])} | {r['floor']['throughput_rps']} req/s | "
              f"{r['dashboard']['throughput_rps']} req/s | {r['throughput_ratio']}× | {r['floor']['p95_ms']} ms | "
              f"{r['dashboard']['p95_ms']} ms | {r['p95_ratio']}× | {r['floor']['web_cpu_ms_per_request']} / "
              f"{r['dashboard']['web_cpu_ms_per_request']} ms | {r['web_cpu_ratio']}× |"
              for i, r in enumerate(rounds, 1)),
            "",
        ]
    pooled = load["vs_floor"].get("pooled")
    out += [
        f"Dashboard over floor{' (median of the rounds)' if alternating else ''}: throughput "
        f"{load['vs_floor']['throughput_ratio']}× (target ≥ 0.7×), p95 {load['vs_floor']['p95_ratio']}× (target ≤ "
        f"1.5×), web CPU per request {load['vs_floor']['web_cpu_ratio']}×."
        + (f" Rounds pooled: throughput {pooled['throughput_ratio']}×, p95 {pooled['p95_ratio']}×, web CPU "
           f"{pooled['web_cpu_ratio']}×." if alternating and pooled else ""),
        "",
        "Server time under load (the web server's access log), per endpoint:",
        "",
        "| endpoint | requests | p50 | p95 | one client alone, p95 |",
        "|---|---|---|---|---|",
    ]
    single = load.get("single_client_p95_ms") or {}
    for name, v in sorted(server.items(), key=lambda kv: list(load["endpoints"]).index(kv[0])
                          if kv[0] in load["endpoints"] else 99):
        out.append(f"| {name} | {v['n']:,} | {v['p50']} ms | {v['p95']} ms | {single.get(name, '–')} ms |")
    out += ["", f"wrk itself used {load['cpu']['wrk_cpu_percent_of_machine']} % of the machine. Little's law for "
            f"this closed loop: mean latency = clients / throughput = {load['littles_law_mean_ms']} ms.", ""]
    held = [*load["floor"].get("connections_per_process", []), *load.get("connections_per_process", [])]
    if held:
        out += [f"Connections each web process held halfway through each run, floor's then dashboard's: "
                f"{', '.join('/'.join(str(n) for n in counts) for counts in held)} (of {load['clients']}). A process "
                "keeps the connections it accepted for as long as the clients keep them alive and runs Python on "
                "one core at a time, so a process holding most of them is the slowest to answer while the other "
                "idles.", ""]
    return out


def _browser_md(b: dict | None) -> list[str]:
    if not b:
        return []
    out = [
        "## 6. Browser",
        "",
        f"Debian's Chromium, headless, driven by Playwright; logged in, one warm-up visit, then {b['runs']} visits of "
        f"the dashboard ({b['holdings_rows']} holdings) timed from navigation start by the page's own marks.",
        "",
        "| | p50 | p95 |",
        "|---|---|---|",
        f"| shell HTML received | {b['shell_response_end_ms']['p50']} ms | {b['shell_response_end_ms']['p95']} ms |",
        f"| totals visible | {b['totals_ms']['p50']} ms | {b['totals_ms']['p95']} ms |",
        f"| holdings table filled | {b['holdings_ms']['p50']} ms | {b['holdings_ms']['p95']} ms |",
        f"| chart drawn | {b['chart_ms']['p50']} ms | {b['chart_ms']['p95']} ms |",
    ]
    if b.get("naive_totals_ms"):
        out.append(f"| naive page (server renders totals and chart), DOM ready | {b['naive_totals_ms']['p50']} ms | "
                   f"{b['naive_totals_ms']['p95']} ms |")
        out += ["", f"Totals appear {b['totals_speedup_vs_naive']}× sooner than on the naive page, the chart "
                f"{b['chart_speedup_vs_naive']}× sooner."]
    return [*out, ""]


def _method_md(results: dict) -> list[str]:
    vacuumed = results.get("vacuum_seconds") or {}
    autovacuum = results["machine"].get("postgres_autovacuum")
    return [
        "## Method and caveats",
        "",
        *([f"- Before each section, outside its timings, the bench runs `VACUUM ANALYZE` on its database "
           f"({', '.join(f'{s:.1f} s before {name}' for name, s in vacuumed.items())}), as autovacuum does in the "
           "background on a production server: no section reads through the dead rows that the set-up's and the "
           "previous sections' bulk writes left (the refresh's 10,000 portfolios leave hundreds of thousands), nor "
           "meets autovacuum starting in the middle of it. This server's autovacuum was "
           f"{autovacuum or 'not read'}."] if vacuumed else []),
        "- Percentiles interpolate linearly between samples; with few samples (chart runs, browser visits) p95 is "
        "close to the maximum.",
        "- A missed target's profile (pyinstrument, in the runner's process, after the timed sections) profiles the "
        "operation the target times, in the same state: a chart generation keeping the closes but no valuations "
        "(C1), one after a new day's closes keeping what the previous generation left (C3), requests after their "
        "caches were emptied (cold). What puts that state in place before each operation runs outside the profile.",
        "- The web tier runs with `DJANGO_DEBUG=0` and production settings, except that on plain-HTTP loopback "
        "cookies are not Secure-only and there is no redirect to https (TLS ends at a proxy in production).",
        "- The naive baselines live in `bench/` only (`bench/naive.py`, served through `bench/urls.py`); they use "
        "the product's average-cost engine, so both sides compute the same numbers.",
        "- Where a baseline would take minutes, it is measured on a subset and extrapolated linearly (naive "
        "refresh; per-instrument queries without their index), as the tables say.",
        "- The load run is a closed loop without think time on a 2-core machine that also runs Postgres, Redis "
        "and the load generator: it measures how the web tier queues at saturation, the worst case for p95.",
        "",
    ]

