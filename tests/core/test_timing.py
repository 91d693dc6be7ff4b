"""Latency histograms: known latencies give known percentiles; the middleware records endpoints."""

import pytest
from django_redis import get_redis_connection

from core.timing import (
    BUCKETS_MS,
    percentiles_from,
    timing_counters,
    timing_histogram,
    timing_record,
    timing_record_many,
    timing_series,
    timing_summary,
)


def test_known_latencies_give_percentiles_interpolated_within_their_bucket():
    # 1..100 ms, one each: evenly spread, so interpolation within the buckets finds them exactly
    # (the 95th is the 20th of the 25 values in 75–100 ms), not the bucket's edge (100 ms)
    for ms in range(1, 101):
        timing_record(series="t:known", seconds=ms / 1000, now=1_000_000)
    summary = timing_summary(series="t:known", now=1_000_000)
    assert (summary["count"], summary["p50_ms"], summary["p95_ms"], summary["p99_ms"]) == (100, 50, 95, 99)
    assert summary["mean_ms"] == 50.5


def test_a_slow_tail_shows_in_p99_only():
    for _ in range(990):
        timing_record(series="t:tail", seconds=0.004, now=1_000_000)
    for _ in range(10):
        timing_record(series="t:tail", seconds=2.5, now=1_000_000)
    summary = timing_summary(series="t:tail", now=1_000_000)
    # all 990 fast ones in the 3–5 ms bucket: the 500th of them is about halfway through it
    assert (summary["p50_ms"], summary["p95_ms"], summary["p99_ms"]) == (4.0, 4.9, 5)
    for _ in range(10):
        timing_record(series="t:tail", seconds=2.5, now=1_000_000)
    # 1010 values, the 999.9th is the 9.9th of the 20 in 2000–3000 ms: 2495 ms, not the 3000 ms edge
    assert timing_summary(series="t:tail", now=1_000_000)["p99_ms"] == 2495


def test_beyond_the_last_bound_the_percentile_is_its_floor():
    timing_record(series="t:slowest", seconds=90, now=1_000_000)
    assert timing_summary(series="t:slowest", now=1_000_000)["p50_ms"] == 60000


def test_windows_age_out_of_the_summary():
    timing_record(series="t:old", seconds=0.01, now=1_000_000)
    timing_record(series="t:old", seconds=0.02, now=1_000_000 + 3 * 3600)
    assert timing_counters(series="t:old", minutes=60, now=1_000_000 + 3 * 3600)["count"] == 1


def test_empty_series_has_no_percentiles():
    assert percentiles_from({}) == {"count": 0, "mean_ms": None, "p50_ms": None, "p95_ms": None, "p99_ms": None}


@pytest.mark.django_db
def test_the_middleware_records_each_endpoint_by_route(api, portfolio):
    for _ in range(3):
        assert api.get(f"/api/portfolios/{portfolio.pk}/").status_code == 200
    api.get("/api/portfolios/999999/")
    api.get("/static/css/folio.css")
    api.get("/no-such-page/")
    api.post("/wp-login.php")
    series = "endpoint:GET /api/portfolios/<int:portfolio_id>/"
    assert series in timing_series(prefix="endpoint:")
    summary = timing_summary(series=series)
    assert summary["count"] == 4
    assert summary["counters"] == {"s2xx": 3, "s4xx": 1}
    assert not any("static" in s for s in timing_series())
    # whatever the method or path, what no route matches is one row
    assert timing_summary(series="endpoint:other (404)")["counters"] == {"s4xx": 2}
    assert not any("unmatched" in s or "wp-login" in s for s in timing_series())


def test_the_all_time_histogram_is_cumulative_and_outlives_the_windows():
    timing_record(series="t:all", seconds=0.0015, now=1_000_000)
    timing_record(series="t:all", seconds=0.009, now=1_000_000 + 3 * 3600)
    buckets, total = timing_histogram(series="t:all")
    assert buckets[:6] == [("0.001", 0), ("0.002", 1), ("0.003", 1), ("0.005", 1), ("0.0075", 1), ("0.01", 2)]
    assert buckets[-1] == ("+Inf", 2) and len(buckets) == len(BUCKETS_MS)
    assert total == 0.0105


def test_many_samples_flushed_together_count_as_many_recorded_one_by_one():
    samples = [(0.004, {"s2xx": 1}), (0.004, {"s2xx": 1}), (0.2, {"s5xx": 1}), (0.0005, {"s2xx": 1})]
    for seconds, counters in samples:
        timing_record(series="t:one", seconds=seconds, counters=counters, now=1_000_000)
    pipe = get_redis_connection("default").pipeline(transaction=False)
    timing_record_many(series="t:many", samples=samples, pipe=pipe, now=1_000_000)
    commands = len(pipe.command_stack)
    pipe.execute()
    one = timing_counters(series="t:one", now=1_000_000)
    assert timing_counters(series="t:many", now=1_000_000) == one
    assert one == {"h0": 1, "h3": 2, "h15": 1, "count": 4, "sum_us": 208_500, "s2xx": 3, "s5xx": 1}
    # one HINCRBY per field (and per histogram field of the all-time hash), then EXPIRE and SADD: not one
    # set per sample
    assert commands == len(one) + 5 + 2
