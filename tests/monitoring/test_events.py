"""The events log: each kind recorded where it happens, buffered, flushed, pruned."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.events import event_record
from core.jobs import job_create, jobs_fail_stuck
from monitoring.events import events_flush, events_prune
from monitoring.models import MonitoringEvent
from monitoring.providers import provider_health
from prices.models import Provider
from prices.providers import provider_get
from prices.providers.gateway import PriceService
from prices.providers.pacing import CircuitBreaker
from prices.providers.yahoo import YahooProvider
from prices.refresh.jobs import prices_refresh_batch_run, prices_refresh_job_start
from tests.factories import InstrumentFactory
from tests.stubs.market import Injected, MarketStub

pytestmark = pytest.mark.django_db


def kinds() -> list[str]:
    events_flush()
    return list(MonitoringEvent.objects.order_by("created_at", "id").values_list("kind", flat=True))


def test_events_are_buffered_then_stored_in_order():
    event_record(kind="cache_flush", message="one", namespace="x")
    event_record(kind="cache_flush", message="two", level="warning")
    assert not MonitoringEvent.objects.exists()
    assert events_flush() == 2
    stored = list(MonitoringEvent.objects.order_by("created_at", "id").values_list("message", "level", "context"))
    assert stored == [("one", "info", {"namespace": "x"}), ("two", "warning", {})]
    assert events_flush() == 0


def test_circuit_open_and_close_are_events():
    breaker = CircuitBreaker("flaky", threshold=2, cooldown=60)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_failure()  # already open: no second event
    breaker.record_success()
    assert kinds() == ["circuit_opened", "circuit_closed"]


@pytest.fixture
def market(settings):
    stub = MarketStub()
    with stub.running():
        settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
        settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.02
        yield stub


def service(market):
    provider = YahooProvider(base_url=market.url, timeout=2)
    return PriceService(providers=lambda name: provider)


def test_a_failed_batch_is_a_provider_error_event(market, settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
    InstrumentFactory(symbol="AAA", provider=Provider.YAHOO)
    market.failing_symbols = {"AAA"}
    service(market).batch_fetch_prices(["AAA"])
    events_flush()
    event = MonitoringEvent.objects.get(kind="provider_error")
    assert event.level == "warning" and event.context["provider"] == "yahoo" and event.context["attempts"] == 4
    assert "TransientError" in event.message


def test_quota_exhaustion_is_one_event_a_day(market, settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": 1, "batch_size": 1}}
    InstrumentFactory(symbol="AAA", provider=Provider.YAHOO)
    InstrumentFactory(symbol="BBB", provider=Provider.YAHOO)
    InstrumentFactory(symbol="CCC", provider=Provider.YAHOO)
    service(market).batch_fetch_prices(["AAA", "BBB", "CCC"])
    assert kinds() == ["quota_exhausted"]


def test_a_long_rate_limit_wait_is_an_event(market, settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 0.8, "burst": 1, "daily_quota": None,
                                          "batch_size": 1}}
    InstrumentFactory(symbol="AAA", provider=Provider.YAHOO)
    InstrumentFactory(symbol="BBB", provider=Provider.YAHOO)
    service(market).batch_fetch_prices(["AAA", "BBB"])
    events_flush()
    event = MonitoringEvent.objects.get(kind="rate_limit_wait")
    assert event.context["waited"] >= 1.0


def test_429_responses_are_counted_as_rate_limited(market, settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
    InstrumentFactory(symbol="AAA", provider=Provider.YAHOO)
    market.injected = {1: Injected(429, "Edge: Too Many Requests", "text/plain", {"Retry-After": "0"})}
    service(market).batch_fetch_prices(["AAA"])
    health = provider_health(name="yahoo")
    assert (health["requests"], health["rate_limited"], health["errors"]) == (2, 1, 0)
    assert health["p50_ms"] is not None


def test_job_start_finish_and_timeout_are_events(market, settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
    settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": market.url, "api_key": None}}
    provider_get.cache_clear()
    instrument = InstrumentFactory(symbol="AAA", provider=Provider.YAHOO)
    started = prices_refresh_job_start(lock_scope=None, instrument_ids=[instrument.pk])
    prices_refresh_batch_run(job_id=started.job_id, batch_id="0", provider="yahoo", instrument_ids=[instrument.pk])
    provider_get.cache_clear()
    job_create(kind="refresh_prices", total=1, batches=1, owner_id=None, deadline_seconds=-1)
    jobs_fail_stuck()
    assert kinds() == ["job_started", "job_finished", "job_failed"]
    finished = MonitoringEvent.objects.get(kind="job_finished")
    assert finished.context["done"] == 1 and finished.context["job_id"] == started.job_id


def test_retention_by_age_and_by_count(settings):
    settings.EVENTS_MAX_AGE_DAYS = 30
    settings.EVENTS_MAX_COUNT = 3
    now = timezone.now()
    MonitoringEvent.objects.bulk_create(
        [MonitoringEvent(kind="cache_flush", message=f"e{n}", created_at=now - timedelta(hours=n)) for n in range(6)]
        + [MonitoringEvent(kind="cache_flush", message="ancient", created_at=now - timedelta(days=40))])
    assert events_prune(now=now) == 4
    assert list(MonitoringEvent.objects.order_by("-created_at").values_list("message", flat=True)) == ["e0", "e1", "e2"]
