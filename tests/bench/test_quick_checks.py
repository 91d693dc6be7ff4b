"""bench-quick's verdict (bench/quick.py `checks`): it fails on each deterministic figure that is wrong,
and on nothing else — slow timings never fail it."""

import copy

import pytest

from bench.quick import checks

GOOD = {
    "errors": {},
    "sections": {
        "refresh": {
            "params": {"instruments": 200},
            "expected_requests": 4,
            "one_portfolio": {"requests": 4, "state": "SUCCESS", "stored": 200, "wall_seconds": 6.1},
            "shared_portfolios": {"requests": 4, "state": "SUCCESS", "stored": 200, "wall_seconds": 6.2},
        },
        "dashboard": {
            "queries": {
                "small_holdings": 5, "large_holdings": 40,
                "small": {name: {"warm": 0, "cold": 6} for name in ("initial", "holdings", "chart")},
                "large": {name: {"warm": 0, "cold": 6} for name in ("initial", "holdings", "chart")},
            },
            "agreement": {"total_value": "10.00", "total_cost": "8.00", "holdings_count": 5, "series_points": 366,
                          "series_last": {"date": "2026-12-04", "value": "10.00", "invested": "8.00"},
                          "equal": True},
            "server": {"initial": {"warm": {"p95": 900.0}}},  # a slow machine: not a failure
        },
        "indexes": {"queries": {
            "latest_close": {"expects_index": True, "index_used": True, "runs_in": "prices/selectors.py",
                             "with_index": {"scans": ["Index Scan"]}},
            "history_range": {"expects_index": False, "index_used": False, "runs_in": "prices/selectors.py",
                              "with_index": {"scans": ["Seq Scan"]}},
        }},
        "load": {"errors": 0, "error_kinds": {}, "latency_ms": {"p95": 5000.0}},
    },
}


def _with(path: list[str], value) -> dict:
    results = copy.deepcopy(GOOD)
    node = results
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return results


def test_all_deterministic_figures_right_passes_however_slow():
    assert checks(GOOD) == []


@pytest.mark.parametrize(("path", "value", "says"), [
    (["sections", "refresh", "one_portfolio", "requests"], 5, "5 provider requests, expected 4"),
    (["sections", "refresh", "shared_portfolios", "requests"], 8, "shared portfolios: 8 requests, expected 4"),
    (["sections", "refresh", "one_portfolio", "stored"], 150, "150 of 200 prices stored"),
    (["sections", "dashboard", "queries", "large", "holdings"], {"warm": 0, "cold": 7}, "queries grow with holdings"),
    (["sections", "dashboard", "queries", "small", "initial"], {"warm": 3, "cold": 6},
     "3 queries warm with 5 holdings, expected 0"),
    # The dashboard section raises when the naive view and the product disagree (bench/dashboard.py).
    (["errors"], {"dashboard": "RuntimeError: naive view and product disagree on portfolio 1: {...}"},
     "section dashboard failed: RuntimeError: naive view and product disagree"),
    (["sections", "indexes", "queries", "latest_close", "index_used"], False, "latest_close (prices/selectors.py)"),
    (["sections", "load", "errors"], 3, "load: 3 errors"),
    (["errors"], {"chart": "TimeoutError: no chart\nmore"}, "section chart failed: TimeoutError: no chart"),
])
def test_each_wrong_figure_fails_and_says_which(path, value, says):
    failures = checks(_with(path, value))
    assert len(failures) >= 1 and any(says in failure for failure in failures), failures
