"""The dashboard bench's cold read with the kept replay outdated too (bench/dashboard.py `cold_replay_reset`): the
reset outdates the portfolio's kept replay as a trade's trigger does, where the plain cold reset leaves it serving;
and the report (bench/report.py) shows its figures beside D5/D7/D9 as information, not as targets."""

import copy

import pytest
from django.db import connection

from bench.dashboard import cold_replay_reset, cold_reset
from bench.report import _dashboard_md, _reason_dashboard_cold, replay_outdated_lines, summary_text
from portfolio.kept import KEPT_SQL
from portfolio.models import KeptReplay, Portfolio
from portfolio.selectors import portfolio_valuation_get

TOKEN = "0" * 40  # forgotten from a cache that never held it: nothing to forget


def _kept_state(portfolio_id: int) -> tuple[int, str | None]:
    """The portfolio's replay version and the kept replay a valuation would read at it (None: it replays)."""
    with connection.cursor() as cursor:
        cursor.execute(KEPT_SQL, [portfolio_id])
        version, _, state = cursor.fetchone()
    return version, state


@pytest.mark.skipif(connection.vendor != "postgresql", reason="replays are kept on Postgres only")
def test_the_cold_reset_keeps_the_replay_and_the_replayed_reset_outdates_it(held):
    pid = held.portfolio_id
    before = portfolio_valuation_get(portfolio=Portfolio.objects.get(pk=pid))
    version, state = _kept_state(pid)
    assert state is not None and KeptReplay.objects.get(portfolio_id=pid).state_version == version

    versions = Portfolio.objects.values_list("data_version", "history_version").get(pk=pid)
    cold_reset(portfolio_id=pid, token=TOKEN)  # a cold read as after a price refresh: the replay still serves
    assert _kept_state(pid) == (version, state)
    # The answers outdated as a refresh of today's quotes outdates them: the chart's history version unchanged, so
    # no regeneration is queued that a later sample would compete with.
    assert Portfolio.objects.values_list("data_version", "history_version").get(pk=pid) == (versions[0] + 1,
                                                                                              versions[1])

    cold_replay_reset(portfolio_id=pid, token=TOKEN)
    outdated_version, outdated_state = _kept_state(pid)
    assert outdated_version > version
    assert outdated_state is None  # the replay kept at the old version no longer serves
    # The data did not change: the next read replays it to the same valuation, and keeps it at the new version.
    after = portfolio_valuation_get(portfolio=Portfolio.objects.get(pk=pid))
    assert (after.total_value, after.total_cost) == (before.total_value, before.total_cost)
    assert KeptReplay.objects.get(portfolio_id=pid).state_version == outdated_version


def _timing(p50: float, p95: float | None = None, n: int = 30, size: int = 1000) -> dict:
    return {"n": n, "p50": p50, "p95": p95 if p95 is not None else p50 * 1.2, "statuses": [200], "bytes": size}


def _transport(cold_p50: float, replayed_initial: tuple[float, float], replayed_page: float) -> dict:
    return {
        "initial": {"warm": _timing(2.0), "cold": _timing(cold_p50)},
        "holdings": {"warm": _timing(2.5), "cold": _timing(cold_p50)},
        "chart": {"warm": _timing(3.0), "cold": _timing(400.0, n=7)},
        "page_cold": {"totals": {"n": 7, "p50": cold_p50}, "totals_and_holdings": {"n": 7, "p50": cold_p50 + 2},
                      "with_chart": {"n": 7, "p50": 500.0}},
        "cold_replay_outdated": {"initial": _timing(*replayed_initial),
                                 "totals_and_holdings": {"n": 7, "p50": replayed_page}},
    }


def _naive(p50: float) -> dict:
    return {"n": 7, "p50": p50, "p95": p50 * 1.1, "queries": 1001, "total_value": "1.00", "total_cost": "1.00",
            "holdings_count": 501, "totals_ms": 300.0, "chart_ms": 800.0}


DASHBOARD = {
    "portfolio": {"holdings": 500, "price_rows": 1_250_000, "transactions": 2000},
    "queries": {"small_holdings": 10, "large_holdings": 500,
                "small": {n: {"warm": 1, "cold": 6} for n in ("initial", "holdings", "chart")},
                "large": {n: {"warm": 1, "cold": 6} for n in ("initial", "holdings", "chart")}},
    "web": {"workers": 2, "threads": 4},
    "test_client": _transport(18.0, (61.5, 70.25), 64.0),
    "test_client_naive": _naive(1200.0),
    "test_client_ratios": {"initial_speedup_warm": 600.0, "initial_cold_vs_warm_p95": 9.0},
    "server": _transport(21.0, (66.0, 81.75), 75.0),
    "server_naive": _naive(1200.0),
    "server_ratios": {"initial_speedup_warm": 600.0, "initial_cold_vs_warm_p95": 10.5},
}
LINES = [
    "Cold with the replay outdated too (after a trade, test client): initial data p50 61.5 ms / p95 70.2 ms; "
    "totals and holdings p50 64.0 ms, 19× faster than the naive view (cold with the replay kept: 20.0 ms, 60×)",
    "Cold with the replay outdated too (after a trade, granian): initial data p50 66.0 ms / p95 81.8 ms; "
    "totals and holdings p50 75.0 ms, 16× faster than the naive view (cold with the replay kept: 23.0 ms, 52×)",
]


def test_the_report_renders_the_replayed_figures_beside_the_cold_targets_not_as_targets():
    assert replay_outdated_lines(DASHBOARD) == LINES

    targets = [{"id": "D5", "met": False, "what": "initial-data p95, cold over warm (granian)", "result": "10.5×",
                "target": "≤ 3×"},
               {"id": "D9", "met": False, "what": "Totals and holdings from nothing cached vs naive view (granian)",
                "result": "52×", "target": "≥ 50× faster"},
               {"id": "C1", "met": True, "what": "Chart generation", "result": "90 ms", "target": "≤ 150 ms"}]
    summary = summary_text({"total_seconds": 1.0, "targets": targets, "sections": {"dashboard": DASHBOARD}})
    lines = summary.splitlines()
    # Right after the last dashboard target, before the chart's; marked as information, neither met nor missed.
    assert lines[3:5] == [f"  info   {line}" for line in LINES]
    assert lines[5].startswith("  met    C1")

    section = "\n".join(_dashboard_md(DASHBOARD, None))
    assert all(f"{line}." in section for line in LINES)

    results = {"sections": {"dashboard": DASHBOARD}}
    why, step = _reason_dashboard_cold(results)
    assert "kept in Postgres" in why and "recomputes the whole valuation" not in why
    assert "replays all 2,000 transactions" in why
    assert "test client p50 61.5 ms / p95 70.25 ms, granian p50 66.0 ms / p95 81.75 ms" in why
    assert ("totals and holdings 19× faster than the naive view (test client; 60× with the replay kept), 16× "
            "faster than the naive view (granian; 52× with the replay kept)") in why
    assert "no longer replays the 2,000 transactions unless a write outdated the kept replay" in step


def test_results_from_before_the_replayed_figures_render_without_them():
    before = copy.deepcopy(DASHBOARD)
    for transport in ("test_client", "server"):
        del before[transport]["cold_replay_outdated"]
    assert replay_outdated_lines(before) == []
    summary = summary_text({"total_seconds": 1.0, "targets": [], "sections": {"dashboard": before}})
    assert "info" not in summary
    assert "Cold with the replay outdated too (after" not in "\n".join(_dashboard_md(before, None))
    why, _ = _reason_dashboard_cold({"sections": {"dashboard": before}})
    assert "this run did not measure it" in why


def test_d5s_next_step_compares_the_computation_alone_with_what_d5_allows():
    # warm p95 2.4 ms: D5 allows a cold read 7.2 ms
    results = {"sections": {"dashboard": copy.deepcopy(DASHBOARD)}}
    results["sections"]["dashboard"]["server"]["initial"]["warm"] = _timing(2.0, 2.4)

    # the computation alone over what D5 allows the whole request: no web tier meets it while a read computes
    results["sections"]["dashboard"]["test_client"]["compute_alone"] = _timing(10.5, 12.75)
    _, step = _reason_dashboard_cold(results)
    assert "D5 allows a cold read 7.2 ms" in step
    assert "`dashboard_data_compute`), takes p50 10.5 ms / p95 12.75 ms: more than D5 allows the whole request" in step

    # under it, the figure alone
    results["sections"]["dashboard"]["test_client"]["compute_alone"] = _timing(5.0, 6.0)
    _, step = _reason_dashboard_cold(results)
    assert "takes p50 5.0 ms / p95 6.0 ms. (1) Stale-while-revalidate" in step

    # results from before it was measured say nothing of it
    del results["sections"]["dashboard"]["test_client"]["compute_alone"]
    _, step = _reason_dashboard_cold(results)
    assert "computation alone" not in step
