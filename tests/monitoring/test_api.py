"""Monitoring API, page, /healthz and /metrics: staff only where they should be, real numbers."""

import time

import pytest
from django.test import Client
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from core.events import event_record
from core.jobs import job_batch_record, job_create, job_errors_add
from core.timing import timing_record
from monitoring.selectors import HEARTBEAT_KEY
from portfolio.dashboard import dashboard_data_get
from tests.factories import InstrumentFactory, PriceFactory, TransactionFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = ["cache-stats", "events", "providers", "jobs", "endpoints"]


@pytest.mark.parametrize("name", ENDPOINTS)
def test_monitoring_endpoints_are_staff_only(api, staff_api, name):
    url = f"/api/monitoring/{name}/"
    assert APIClient().get(url).status_code == 401
    assert api.get(url).status_code == 403
    assert staff_api.get(url).status_code == 200


def test_cache_stats_show_dashboard_hits_and_misses(staff_api, portfolio):
    dashboard_data_get(portfolio=portfolio)
    dashboard_data_get(portfolio=portfolio)
    body = staff_api.get("/api/monitoring/cache-stats/").json()
    assert body["namespaces"]["dashboard"] == {"hits": 1, "misses": 1, "hit_ratio": 0.5, "ttl_seconds": 60}
    assert body["redis"]["used_memory"] > 0 and body["redis"]["keys"] > 0
    assert body["history"][-1]["dashboard:misses"] == 1


def test_cache_flush_by_namespace(staff_api, api, portfolio):
    dashboard_data_get(portfolio=portfolio)
    assert api.post("/api/monitoring/cache/flush/", {"namespace": "dashboard"}, format="json").status_code == 403
    bad = staff_api.post("/api/monitoring/cache/flush/", {"namespace": "nope"}, format="json")
    assert bad.status_code == 400 and "namespace" in bad.json()
    done = staff_api.post("/api/monitoring/cache/flush/", {"namespace": "dashboard"}, format="json")
    assert done.json() == {"namespace": "dashboard", "deleted": 1}
    kinds = [e["kind"] for e in staff_api.get("/api/monitoring/events/").json()["results"]]
    assert kinds == ["cache_flush"]


def test_events_newest_first_and_filtered(staff_api):
    event_record(kind="job_started", message="a")
    event_record(kind="circuit_opened", message="b", level="error")
    body = staff_api.get("/api/monitoring/events/").json()
    assert [e["message"] for e in body["results"]] == ["b", "a"]
    only = staff_api.get("/api/monitoring/events/?level=error").json()["results"]
    assert [e["kind"] for e in only] == ["circuit_opened"]
    assert staff_api.get("/api/monitoring/events/?kind=bogus").status_code == 400


def test_jobs_show_durations_queues_and_heartbeat(staff_api):
    job_id = job_create(kind="refresh_prices", total=3, batches=1, owner_id=None, deadline_seconds=60)
    job_batch_record(job_id=job_id, batch_id="0", ok=2, failed=1, errors=["X: boom"])
    body = staff_api.get("/api/monitoring/jobs/").json()
    (job,) = body["jobs"]
    assert (job["state"], job["done"], job["failed"], job["errors"][0]["error"]) == ("SUCCESS", 2, 1, "X: boom")
    assert job["duration_seconds"] >= 0
    assert set(body["queues"]) == {"history", "prices", "charts", "default"}
    assert body["heartbeat_age_seconds"] is None and body["workers_alive"] is False


def test_providers_show_freshness_per_provider(staff_api):
    InstrumentFactory(symbol="OLD", provider="yahoo")
    PriceFactory(instrument=InstrumentFactory(symbol="AGED", provider="yahoo"))
    InstrumentFactory(symbol="HOUSE", provider="manual")
    providers = {p["name"]: p for p in staff_api.get("/api/monitoring/providers/").json()["providers"]}
    assert providers["yahoo"]["instruments"] == {"fresh": 0, "stale": 1, "unpriced": 1}
    assert providers["yahoo"]["circuit"] == "closed" and providers["yahoo"]["requests"] == 0
    assert providers["manual"]["instruments"] == {"fresh": 0, "stale": 0, "unpriced": 1}


def test_endpoint_latencies_are_listed(staff_api, api, portfolio):
    api.get(f"/api/portfolios/{portfolio.pk}/")
    rows = staff_api.get("/api/monitoring/endpoints/").json()["endpoints"]
    row = next(r for r in rows if r["endpoint"] == "GET /api/portfolios/<int:portfolio_id>/")
    assert row["count"] == 1 and row["p50_ms"] is not None


def test_monitoring_page_is_for_staff(user):
    web = Client()
    assert web.get("/monitoring/").status_code == 302
    web.force_login(user)
    assert web.get("/monitoring/").status_code == 302  # to the admin login: not staff
    user.is_staff = True
    user.save()
    page = web.get("/monitoring/")
    assert page.status_code == 200 and b"js/monitoring.js" in page.content


def test_healthz_reports_each_dependency():
    body = Client().get("/healthz").json()
    assert body == {"status": "degraded", "checks": {"database": "ok", "redis": "ok", "workers": "no heartbeat"}}
    get_redis_connection("default").set(HEARTBEAT_KEY, str(time.time()))
    assert Client().get("/healthz").json()["status"] == "ok"


def test_metrics_need_staff_or_the_token(settings, user, portfolio):
    settings.METRICS_TOKEN = "s3cret-token"
    assert Client().get("/metrics").status_code == 401
    web = Client()
    web.force_login(user)
    assert web.get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    dashboard_data_get(portfolio=portfolio)
    TransactionFactory(portfolio=portfolio)
    scraped = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert scraped.status_code == 200
    text = scraped.content.decode()
    assert 'folio_query_cache_misses_total{namespace="dashboard"} 1.0' in text
    assert 'folio_queue_length{queue="prices"}' in text
    assert "folio_worker_heartbeat_age_seconds" in text


def test_schema_lists_the_monitoring_api(staff_api):
    paths = staff_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    for name in ENDPOINTS:
        assert f"/api/monitoring/{name}/" in paths
    assert "/api/monitoring/cache/flush/" in paths


def test_metrics_export_latencies_as_histograms(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    for seconds in (0.004, 0.004, 0.2):
        timing_record(series="endpoint:GET /api/things/", seconds=seconds, counters={"s2xx": 1})
    timing_record(series="endpoint:GET /api/idle/", seconds=0.05, now=1_000_000)  # idle for years: still a series
    text = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").content.decode()
    assert "# TYPE folio_endpoint_latency_seconds histogram" in text
    label = 'endpoint="GET /api/things/"'
    assert f'folio_endpoint_latency_seconds_bucket{{{label},le="0.003"}} 0.0' in text
    assert f'folio_endpoint_latency_seconds_bucket{{{label},le="0.005"}} 2.0' in text
    assert f'folio_endpoint_latency_seconds_bucket{{{label},le="0.2"}} 3.0' in text
    assert f'folio_endpoint_latency_seconds_bucket{{{label},le="+Inf"}} 3.0' in text
    assert f"folio_endpoint_latency_seconds_count{{{label}}} 3.0" in text
    assert f"folio_endpoint_latency_seconds_sum{{{label}}} 0.208" in text
    assert 'folio_endpoint_latency_seconds_count{endpoint="GET /api/idle/"} 1.0' in text


def test_a_job_id_naming_another_key_of_the_job_is_a_404_not_a_server_error(api, user):
    # a job with errors and a batch recorded: its hash has a list and a set beside it in Redis, ":errors" and
    # ":batches"
    job_id = job_create(kind="import_transactions", total=3, batches=1, owner_id=user.pk, deadline_seconds=600)
    job_errors_add(job_id=job_id, errors=["row 2, quantity: Must be greater than zero."])
    job_batch_record(job_id=job_id, batch_id="b1", ok=0, failed=1)
    api.raise_request_exception = False  # the answer a client gets
    for suffix in (":errors", ":batches"):
        response = api.get(f"/api/jobs/{job_id}{suffix}/")
        assert response.status_code == 404, response.content[:200]
    job = api.get(f"/api/jobs/{job_id}/").json()
    assert (job["job_id"], job["failed"]) == (job_id, 1)
