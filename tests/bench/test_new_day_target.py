"""The report's target for a chart updated after one new day's closes (bench/report.py): judged on the new-day
runs the chart section times (bench/chart.py), with its miss explained from the figures, never left out."""

from bench.report import _reason_new_day, targets_evaluate


def _chart(new_day_p95: float | None) -> dict:
    chart = {"worker_ms": {"n": 20, "p50": 80.0, "p95": 82.0}, "worker_peak_rss_mb": 178.0,
             "worker_idle_rss_mb": 116.0, "peak_over_idle_mb": 62.0, "first_run_seconds": 0.149,
             "new_day_closes_moved": 500}
    if new_day_p95 is not None:
        chart["new_day_worker_ms"] = {"n": 6, "p50": new_day_p95 - 4, "p95": new_day_p95}
    return chart


def _chart_targets(new_day_p95: float | None) -> dict:
    return {t.id: t for t in targets_evaluate({"sections": {"chart": _chart(new_day_p95)}})}


def test_a_new_day_over_20_ms_is_a_missed_target_beside_the_same_day_generation():
    targets = _chart_targets(101.0)
    assert list(targets) == ["C1", "C2", "C3"]
    new_day = targets["C3"]
    assert (new_day.met, new_day.result, new_day.target) == (False, "101 ms", "≤ 20 ms")
    assert new_day.baseline == "same-day generation p95 82 ms"

    why, step = _reason_new_day({"sections": {"chart": _chart(101.0)}})
    assert "takes again what the new closes leave as it was" in why and "the portfolio's 500 instruments" in why
    assert "p50 97 ms, p95 101 ms" in why and "against p95 82 ms" in why
    assert "read only the new day's closes" in step and "patch the daily ranges'" in step


def test_a_new_day_within_20_ms_is_met_and_no_new_day_runs_no_target():
    assert _chart_targets(19.5)["C3"].met
    assert _chart_targets(20.0)["C3"].met
    assert list(_chart_targets(None)) == ["C1", "C2"]
