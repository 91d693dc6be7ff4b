"""What an operator reads on the monitoring pages and /metrics (monitoring/selectors.py, monitoring/views.py):
each figure as the product's state is, a provider's spent day, the broker's queues, a job failed once."""

import socket
import subprocess
import time

import pytest
import redis
from django.test import Client

from charts.live import live_valuation_get
from core.jobs import jobs_fail_stuck
from core.query_cache import cache_stats_get
from monitoring.events import events_flush
from monitoring.models import MonitoringEvent
from portfolio.dashboard import dashboard_data_get
from prices.models import Provider
from prices.providers import provider_get
from prices.providers.pacing import CircuitBreaker, DailyQuota
from prices.providers.telemetry import provider_call_record
from prices.refresh.jobs import prices_refresh_batch_run, prices_refresh_job_start
from tests.factories import InstrumentFactory, TransactionFactory
from tests.stubs.market import MarketStub

pytestmark = pytest.mark.django_db


def providers(staff_api) -> dict:
    return {p["name"]: p for p in staff_api.get("/api/monitoring/providers/").json()["providers"]}


def test_a_provider_without_a_declared_quota_that_said_its_day_is_spent_shows_no_quota_left(staff_api):
    # Stooq declares no daily quota; it answered "Exceeded the daily hits limit": the gateway refuses it all day
    InstrumentFactory(symbol="AAA.US", provider=Provider.STOOQ)
    quota = DailyQuota("stooq", None)
    quota.exhaust()
    assert quota.spent()  # every call today is refused before it is made
    stooq = providers(staff_api)["stooq"]
    # (the page's "Quota left" column showed "—", unlimited)
    assert stooq["quota_left_today"] == 0, stooq


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_metrics_while_redis_is_down_is_not_a_500(settings):
    settings.METRICS_TOKEN = "s3cret-token"
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{closed_port()}/0"}}
    scrape = Client(raise_request_exception=False).get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert scrape.status_code != 500, scrape.content[:200]


@pytest.fixture
def market(settings):
    stub = MarketStub()
    with stub.running():
        settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": stub.url, "api_key": None}}
        provider_get.cache_clear()
        yield stub
        provider_get.cache_clear()


def test_a_job_the_cleaner_failed_is_one_job_failed_event(market):
    # a refresh whose batch waited in the queue past the job's deadline (or came back after its worker died)
    instrument = InstrumentFactory(symbol="AAA", provider=Provider.YAHOO)
    started = prices_refresh_job_start(lock_scope=None, instrument_ids=[instrument.pk])
    assert jobs_fail_stuck(now=time.time() + 10**6) == [started.job_id]
    # the late batch is not fetched (its job ended) ...
    prices_refresh_batch_run(job_id=started.job_id, batch_id="0", provider="yahoo", instrument_ids=[instrument.pk])
    events_flush()
    failed = list(MonitoringEvent.objects.filter(kind="job_failed").values_list("message", flat=True))
    # ... and its failure is logged once (it was again: "Price refresh failed: 0 refreshed in … s")
    assert len(failed) == 1, failed


def test_a_configured_provider_with_no_instruments_yet_still_shows_its_health(staff_api, settings):
    # PRICE_PROVIDER=yahoo, nothing held yet: users' searches go to Yahoo, which fails until its circuit opens
    settings.PRICE_PROVIDER = "yahoo"
    provider_call_record(provider="yahoo", seconds=0.2, outcome="error")
    breaker = CircuitBreaker("yahoo", threshold=1, cooldown=60)
    breaker.record_failure()
    assert breaker.state() == "open"
    # selectors.providers_overview_get promises "every provider in use or configured"
    assert "yahoo" in providers(staff_api)


def test_flushing_the_chart_live_namespace_flushes_it(staff_api, portfolio):
    TransactionFactory(portfolio=portfolio)
    dashboard_data_get(portfolio=portfolio)
    live_valuation_get(portfolio=portfolio)  # makes and stores the chart's live part (a chart_live miss)
    live_valuation_get(portfolio=portfolio)
    assert cache_stats_get()["chart_live"]["hits"] == 1
    done = staff_api.post("/api/monitoring/cache/flush/", {"namespace": "chart_live"}, format="json").json()
    live_valuation_get(portfolio=portfolio)
    # (the flush answered {"deleted": 0}, and the next read was still a hit of the old entry)
    assert (done["deleted"], cache_stats_get()["chart_live"]["hits"]) == (1, 1), (done, cache_stats_get())


@pytest.fixture
def broker_redis(tmp_path):
    """A Redis of its own for the broker, as docs/operations.md advises for a large deployment."""
    port = closed_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                               "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(50):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    yield f"redis://127.0.0.1:{port}/0", client
    server.terminate()
    server.wait(5)


def test_queue_lengths_are_read_from_the_broker(staff_api, settings, broker_redis):
    # the broker named by CELERY_BROKER_URL (the Celery app itself keeps its own connection: a test changing it would
    # leave every later worker pointed at this short-lived server)
    url, broker = broker_redis
    settings.CELERY_BROKER_URL = url
    broker.lpush("prices", b"{}", b"{}", b"{}")  # three batches waiting for a worker
    queues = staff_api.get("/api/monitoring/jobs/").json()["queues"]
    # (the cache's Redis was asked: the page and folio_queue_length said 0)
    assert queues["prices"] == 3, queues
