"""Provider faults, for real on loopback: 429 storms, 5xx bursts, timeouts, trickling and broken bodies,
a provider dead for "minutes" — through PriceService, and through refresh jobs on a real worker.

Durations are scaled down so the suite runs in seconds: the production settings (backoff from 0.5 s,
4 attempts, a 5 s timeout, a 60 s circuit cool-down) become milliseconds of backoff, a 0.2 s timeout
and a 1 s cool-down here. Every count asserted is exact, because retries, quota and circuit are
deterministic once the clock is out of the picture: only waits are bounded from below and above.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_redis import get_redis_connection

from core.events import BUFFER_KEY
from core.jobs import TERMINAL, job_get, jobs_recent
from prices.models import Instrument, PriceHistory, VerificationStatus
from prices.providers import provider_get
from prices.providers.gateway import PriceService
from prices.providers.pacing import CircuitBreaker, DailyQuota
from prices.providers.yahoo import YahooProvider
from prices.refresh.jobs import prices_refresh_job_start
from prices.refresh.run import prices_refresh
from tests.factories import InstrumentFactory, PortfolioFactory, PriceFactory, TransactionFactory, UserFactory
from tests.reliability.procs import wait_until
from tests.stubs import StubResponse, StubServer, html_response, json_response, text_response
from tests.stubs.market import CRUMB, MarketStub, stub_price

QUOTE = "/v7/finance/quote"
TIMEOUT = 0.2  # PROVIDER_TIMEOUT_SECONDS here; 5 s in production
COOLDOWN = 1.0  # CIRCUIT_COOLDOWN_SECONDS here; 60 s in production
OLD = timezone.localdate() - timedelta(days=10)  # a stored close that is stale on any exchange


@pytest.fixture(autouse=True)
def scaled_settings(settings):
    """Production pacing with durations scaled down; generous rates so only faults slow things."""
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
    settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.05
    settings.PROVIDER_MAX_ATTEMPTS = 4
    settings.PROVIDER_MAX_WAIT_SECONDS = 2.0
    settings.PROVIDER_TIMEOUT_SECONDS = TIMEOUT
    settings.CIRCUIT_FAILURE_THRESHOLD = 100  # tests of the breaker lower it
    settings.CIRCUIT_COOLDOWN_SECONDS = COOLDOWN
    settings.CHART_DEBOUNCE_SECONDS = 0
    provider_get.cache_clear()
    yield
    provider_get.cache_clear()


@pytest.fixture
def stub(settings) -> Iterator[TimedStub]:
    """A scripted Yahoo: the crumb handshake answers, each test scripts the quote endpoint."""
    server = TimedStub()
    with server.running():
        server.route("/v1/test/getcrumb", text_response(CRUMB))
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": server.url, "api_key": None}}
        provider_get.cache_clear()
        yield server
    assert not server.unrouted


@pytest.fixture
def market(settings) -> Iterator[MarketStub]:
    """A computing Yahoo (any symbols), for faults that are about symbols rather than transport."""
    stub = MarketStub()
    with stub.running():
        settings.PROVIDERS = {**settings.PROVIDERS, "yahoo": {"base_url": stub.url, "api_key": None}}
        provider_get.cache_clear()
        yield stub


def quotes_json(symbols: list[str]) -> str:
    now = int(time.time())
    return json.dumps({"quoteResponse": {"error": None, "result": [
        {"symbol": s, "currency": "USD", "regularMarketPrice": float(stub_price(s)),
         "regularMarketPreviousClose": 100.0, "regularMarketTime": now} for s in symbols]}})


def service_for(stub: StubServer | MarketStub) -> PriceService:
    provider = YahooProvider(base_url=stub.url, timeout=TIMEOUT)
    return PriceService(providers=lambda name: provider)


def yahoo_instruments(count: int, *, prefix: str = "Y", seeded: bool = True) -> list[Instrument]:
    """Yahoo instruments with a known stored close each (123.45, 124.45, …) on OLD."""
    made = [InstrumentFactory(symbol=f"{prefix}{n:03d}", provider="yahoo") for n in range(count)]
    if seeded:
        for n, instrument in enumerate(made):
            PriceFactory(instrument=instrument, date=OLD, close=Decimal("123.45") + n, source="yahoo")
    return made


def stored() -> list[tuple[str, date, Decimal]]:
    return list(PriceHistory.objects.order_by("instrument__symbol", "date")
                .values_list("instrument__symbol", "date", "close"))


def quote_requests(stub: StubServer) -> int:
    return len(stub.requests_to(QUOTE))


class TimedStub(StubServer):
    """A StubServer that also notes when each quote request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.quote_times: list[float] = []

    def _record(self, request):
        if request.path == QUOTE:
            self.quote_times.append(time.monotonic())
        return super()._record(request)

    def gaps(self) -> list[float]:
        """Seconds between consecutive quote requests."""
        return [b - a for a, b in zip(self.quote_times, self.quote_times[1:], strict=False)]


def events(kind: str) -> list[dict]:
    raw = get_redis_connection("default").lrange(BUFFER_KEY, 0, -1)
    return [e for e in map(json.loads, raw) if e["kind"] == kind]


# --- PriceService: retries bounded, waits honoured, quota and breaker exact ---------------------------------


@pytest.mark.django_db
def test_a_429_with_a_retry_after_beyond_the_cap_fails_the_batch_at_once(stub, settings):
    # given a provider that answers every request 429 with "come back in an hour"
    settings.PROVIDER_MAX_WAIT_SECONDS = 0.3  # 60 s in production: no batch ever parks a worker for an hour
    instruments = yahoo_instruments(3)
    before = stored()
    stub.route(QUOTE, text_response("Edge: Too Many Requests", status=429, headers={"Retry-After": "3600"}))

    started = time.monotonic()
    result = service_for(stub).batch_fetch_prices(instruments)

    # then one request and no wait: asked again sooner than the hour it named, it would refuse again (retried
    # at the cap, 4 requests went out within a second, each refused); the batch fails now, a later refresh asks
    assert quote_requests(stub) == 1 and result.requests == 1
    assert time.monotonic() - started < 0.5
    assert set(result.failures) == {"Y000", "Y001", "Y002"}
    assert all(reason.startswith("RateLimitedError: yahoo: HTTP 429") for reason in result.failures.values())
    assert stored() == before


@pytest.mark.django_db
def test_a_retry_after_within_the_cap_is_waited_exactly_then_the_batch_succeeds(stub):
    (instrument,) = yahoo_instruments(1)
    stub.route(QUOTE, text_response("Edge: Too Many Requests", status=429, headers={"Retry-After": "1"}),
               json_response(quotes_json(["Y000"])))

    summary = prices_refresh(instruments=[instrument], service=service_for(stub), force=True)

    assert (quote_requests(stub), summary.requests, summary.failures) == (2, 2, {})
    assert 1.0 <= stub.gaps()[0] < 1.4
    assert stored() == [("Y000", OLD, Decimal("123.45")),
                        ("Y000", PriceHistory.objects.latest("date").date, Decimal(stub_price("Y000")))]


@pytest.mark.django_db
def test_a_429_storm_without_retry_after_backs_off_exponentially_then_gives_up(stub, settings):
    settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.1  # 0.5 s in production
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 1.0
    instruments = yahoo_instruments(2)
    before = stored()
    stub.route(QUOTE, text_response("Edge: Too Many Requests", status=429))

    result = service_for(stub).batch_fetch_prices(instruments)

    assert quote_requests(stub) == 4
    # waits of 0.1·2ⁿ plus up to 0.1 of jitter: 0.1–0.2, 0.2–0.3, 0.4–0.5 s
    for n, gap in enumerate(stub.gaps()):
        assert 0.1 * 2**n <= gap < 0.1 * 2**n + 0.1 + 0.15, stub.gaps()
    assert set(result.failures) == {"Y000", "Y001"}
    assert stored() == before


@pytest.mark.django_db
def test_a_429_storm_over_many_batches_opens_the_circuit_after_exactly_the_threshold(stub, settings):
    settings.CIRCUIT_FAILURE_THRESHOLD = 6
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": 2}}
    instruments = yahoo_instruments(10)  # 5 batches
    stub.route(QUOTE, text_response("Edge: Too Many Requests", status=429))

    result = service_for(stub).batch_fetch_prices(instruments)

    # batch 1: 4 attempts; batch 2: 2 more reach the threshold, its next attempt meets the open circuit;
    # batches 3–5 never reach the wire
    assert quote_requests(stub) == 6
    assert len(result.failures) == 10
    reasons = [result.failures[f"Y{n:03d}"].split(":")[0] for n in range(10)]
    assert reasons == ["RateLimitedError"] * 2 + ["CircuitOpenError"] * 8
    assert CircuitBreaker("yahoo").state() == "open"
    assert len(events("circuit_opened")) == 1


@pytest.mark.django_db
def test_a_5xx_burst_shorter_than_the_retries_is_absorbed(stub):
    instruments = yahoo_instruments(3)
    body = quotes_json(["Y000", "Y001", "Y002"])
    stub.route(QUOTE, json_response('{"error":"Service Unavailable"}', status=503),
               html_response("<html><body>502 Bad Gateway</body></html>", status=502),
               text_response("Internal Server Error", status=500), json_response(body))

    summary = prices_refresh(instruments=instruments, service=service_for(stub), force=True)

    assert (quote_requests(stub), summary.requests, summary.stored, summary.failures) == (4, 4, 3, {})
    today_rows = PriceHistory.objects.exclude(date=OLD)
    assert sorted(today_rows.values_list("instrument__symbol", "close")) == [
        (s, Decimal(stub_price(s))) for s in ("Y000", "Y001", "Y002")]
    assert sorted(PriceHistory.objects.filter(date=OLD).values_list("close", flat=True)) == [
        Decimal("123.45"), Decimal("124.45"), Decimal("125.45")]


@pytest.mark.django_db
def test_a_5xx_burst_longer_than_the_retries_fails_the_run_and_the_next_run_recovers(stub):
    (instrument,) = yahoo_instruments(1)
    before = stored()
    stub.route(QUOTE, *[json_response("{}", status=503)] * 5, json_response(quotes_json(["Y000"])))
    service = service_for(stub)

    first = prices_refresh(instruments=[instrument], service=service, force=True)
    assert (quote_requests(stub), first.stored, list(first.failures)) == (4, 0, ["Y000"])
    assert first.failures["Y000"].startswith("TransientError: yahoo: HTTP 503")
    assert stored() == before

    second = prices_refresh(instruments=[instrument], service=service, force=True)
    assert (quote_requests(stub), second.requests, second.stored, second.failures) == (6, 2, 1, {})


@pytest.mark.django_db
def test_timeouts_are_bounded_per_attempt_and_in_number(stub):
    instruments = yahoo_instruments(2)
    before = stored()
    stub.route(QUOTE, json_response(quotes_json(["Y000", "Y001"]), delay=3.0))

    started = time.monotonic()
    result = service_for(stub).batch_fetch_prices(instruments)
    elapsed = time.monotonic() - started

    assert quote_requests(stub) == 4
    assert 4 * TIMEOUT <= elapsed < 4 * TIMEOUT + 3 * 0.06 + 0.6  # 4 timeouts + 3 short backoffs, never 4 × 3 s
    assert result.failures["Y000"].startswith("TransientError: yahoo: ") and "Timeout" in result.failures["Y000"]
    assert stored() == before


@pytest.mark.django_db
def test_a_slow_loris_body_is_cut_at_the_total_deadline(stub):
    # given a server that sends its headers at once, then trickles the body a piece every 0.1 s: no single
    # read ever waits TIMEOUT, but the whole body would take 4 s
    instruments = yahoo_instruments(2)
    before = stored()
    stub.route(QUOTE, json_response(quotes_json(["Y000", "Y001"]), chunks=40, chunk_delay=0.1))

    started = time.monotonic()
    result = service_for(stub).batch_fetch_prices(instruments)
    elapsed = time.monotonic() - started

    # then each attempt ends at 3 × TIMEOUT (TOTAL_DEADLINE_FACTOR), within one more piece
    assert quote_requests(stub) == 4
    assert 4 * 3 * TIMEOUT <= elapsed < 4 * (3 * TIMEOUT + 0.1) + 3 * 0.06 + 0.6
    assert result.failures["Y000"] == "TransientError: yahoo: body not complete within the deadline"
    assert stored() == before


BROKEN_BODIES = {
    "truncated": json_response(quotes_json(["Y000", "Y001"]), truncate_at=40),
    "html_page_200": html_response(),
    "html_as_json": json_response("<!DOCTYPE html><html><body>Will be right back</body></html>"),
    "garbage_json": json_response('{"quoteResponse": {"resu'),
    "wrong_shape": json_response('{"quoteResponse": {"result": {"Y000": 1}}}'),
    "empty_body": json_response(""),
}


@pytest.mark.django_db
@pytest.mark.parametrize("reply", BROKEN_BODIES.values(), ids=BROKEN_BODIES.keys())
def test_broken_bodies_are_retried_and_never_reach_the_database(stub, reply):
    instruments = yahoo_instruments(2)
    before = stored()
    stub.route(QUOTE, reply)

    summary = prices_refresh(instruments=instruments, service=service_for(stub), force=True)

    assert (quote_requests(stub), summary.requests, summary.stored) == (4, 4, 0)
    assert set(summary.failures) == {"Y000", "Y001"}
    assert all(reason.startswith("TransientError: yahoo: ") for reason in summary.failures.values())
    assert stored() == before
    assert set(Instrument.objects.values_list("verification_status", flat=True)) == {VerificationStatus.VERIFIED}


@pytest.mark.django_db
def test_the_daily_quota_is_never_exceeded_whatever_fails(stub, settings):
    # given a 5-requests-a-day provider answering 503 to everything
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": 5, "batch_size": 1}}
    instruments = yahoo_instruments(3)  # 3 batches of 4 attempts would be 12 requests
    stub.route(QUOTE, json_response("{}", status=503))
    service = service_for(stub)

    first = service.batch_fetch_prices(instruments)
    second = service.batch_fetch_prices(instruments)

    # then attempts are counted before they are made: 5 requests in all, whatever the retries wanted
    assert quote_requests(stub) == 5
    assert DailyQuota("yahoo", 5).used() == 5
    assert [first.failures[s].split(":")[0] for s in ("Y000", "Y001", "Y002")] == [
        "TransientError", "QuotaExhaustedError", "QuotaExhaustedError"]
    assert all(reason.startswith("QuotaExhaustedError") for reason in second.failures.values())
    assert len(events("quota_exhausted")) == 1


@pytest.mark.django_db
def test_an_empty_answer_does_not_disable_instruments_with_a_price_history(stub):
    # Yahoo's v7 leaves unknown symbols out of `result`, so an empty result reads as "all unknown". For
    # instruments that were verified and have years of prices, that is a glitch, not a delisting.
    instruments = yahoo_instruments(2)
    stub.route(QUOTE, json_response('{"quoteResponse":{"result":[],"error":null}}'))

    prices_refresh(instruments=instruments, service=service_for(stub), force=True)

    assert set(Instrument.objects.values_list("verification_status", flat=True)) == {VerificationStatus.VERIFIED}


# --- Refresh jobs on a real worker --------------------------------------------------------------------------


def run_job(*, timeout: float = 30, **kwargs) -> dict:
    """A forced refresh of everything refreshable, followed to its end."""
    job_id = prices_refresh_job_start(force=True, lock_scope=None, **kwargs).job_id
    return wait_job(job_id, timeout=timeout)


def wait_job(job_id: str, *, timeout: float = 30) -> dict:
    return wait_until(lambda: (job := job_get(job_id=job_id)) and job["state"] in TERMINAL and job,
                      timeout=timeout, what=f"job {job_id} to end")


def error_kinds(job: dict) -> dict[str, str]:
    """symbol -> error class, from the job's error list."""
    return {e["error"].split(": ")[0]: e["error"].split(": ")[1] for e in job["errors"]}


def simulated_instruments(count: int) -> list[Instrument]:
    return [InstrumentFactory(symbol=f"SIM{n}", provider="simulated") for n in range(count)]


JOB_FAULTS = {
    "http_503": (json_response('{"error":"Service Unavailable"}', status=503), "TransientError"),
    "http_429": (text_response("Edge: Too Many Requests", status=429), "RateLimitedError"),
    "timeout": (json_response("{}", delay=3.0), "TransientError"),
    "slow_loris": (StubResponse(body=b"{" + b" " * 400 + b"}", chunks=40, chunk_delay=0.1), "TransientError"),
    "truncated": (json_response(quotes_json(["Y000"]), truncate_at=30), "TransientError"),
    "html": (html_response(status=200), "TransientError"),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fault", JOB_FAULTS.values(), ids=JOB_FAULTS.keys())
def test_a_job_counts_a_failing_provider_exactly_and_other_providers_still_refresh(worker, stub, fault):
    # given 3 Yahoo instruments (one batch) with stored prices, and 2 simulated ones, in one job
    reply, error = fault
    yahoo_instruments(3)
    simulated_instruments(2)
    before = stored()
    stub.route(QUOTE, reply)

    job = run_job()

    # then Yahoo's batch made exactly its 4 attempts and failed its 3 symbols; the simulated batch succeeded
    assert quote_requests(stub) == 4
    assert (job["state"], job["total"], job["done"], job["failed"]) == ("SUCCESS", 5, 2, 3)
    assert error_kinds(job) == {"Y000": error, "Y001": error, "Y002": error}
    # the failed symbols keep exactly what was stored; the simulated ones got a price each
    assert [row for row in stored() if row[0].startswith("Y")] == before
    assert set(PriceHistory.objects.filter(instrument__provider="simulated").values_list("instrument__symbol",
                                                                                         flat=True)) == {"SIM0", "SIM1"}
    assert PriceHistory.objects.filter(instrument__provider="simulated", close__lte=0).count() == 0


def dashboard(client, portfolio_id: int) -> tuple[dict, dict[str, dict]]:
    initial = client.get(f"/api/dashboard-initial-data/{portfolio_id}/")
    holdings = client.get(f"/api/dashboard-holdings-data/{portfolio_id}/")
    assert (initial.status_code, holdings.status_code) == (200, 200)
    return initial.json(), {row["symbol"]: row for row in holdings.json()["holdings"]}


@pytest.mark.django_db(transaction=True)
def test_a_provider_dead_for_minutes_opens_the_circuit_probes_once_per_cooldown_and_recovers(
        worker, market, settings, api_client_for):
    # Scale: CIRCUIT_COOLDOWN_SECONDS = 1 s stands for the production 60 s; the provider stays dead for
    # three cool-downs ("minutes") while refresh jobs keep coming, as beat sends them.
    settings.CIRCUIT_FAILURE_THRESHOLD = 3
    dead = yahoo_instruments(2)
    sims = simulated_instruments(2)
    owner = UserFactory(username="dora")
    portfolio = PortfolioFactory(owner=owner, name="Mixed")
    TransactionFactory(portfolio=portfolio, instrument=dead[0], date=date(2024, 1, 2))
    TransactionFactory(portfolio=portfolio, instrument=sims[0], date=date(2024, 1, 2))
    client = api_client_for(owner)
    market.failing_symbols = {"Y000", "Y001"}

    def requests_made() -> int:
        return len(market.quote_requests)

    # the first job trips the breaker: 3 failed attempts, the 4th is refused by the open circuit
    first = run_job()
    assert requests_made() == 3
    assert (first["done"], first["failed"]) == (2, 2)
    assert error_kinds(first) == {"Y000": "CircuitOpenError", "Y001": "CircuitOpenError"}
    assert CircuitBreaker("yahoo").state() == "open"

    # while open, jobs cost Yahoo nothing and the simulated provider is unaffected
    second = run_job()
    assert requests_made() == 3
    assert (second["done"], second["failed"]) == (2, 2)

    # the dashboard says so: the Yahoo holding is stale at its stored price, the provider failing
    initial, rows = dashboard(client, portfolio.pk)
    assert (initial["stale_count"], initial["providers_failing"]) == (1, ["yahoo"])
    assert (rows["Y000"]["stale"], rows["Y000"]["price"], rows["Y000"]["price_as_of"]) == (True, "123.45",
                                                                                           OLD.isoformat())
    assert rows["SIM0"]["stale"] is False
    # ... and the background refresh that stale read queued meets the open circuit: no request either
    stale_job = wait_until(lambda: [j for j in jobs_recent() if j["total"] == 1 and j["state"] in TERMINAL],
                           timeout=10, what="the stale-while-revalidate refresh")[0]
    assert (stale_job["failed"], requests_made()) == (1, 3)

    # after the cool-down exactly one probe goes out; it fails and the circuit opens again
    time.sleep(COOLDOWN + 0.05)
    third = run_job()
    assert requests_made() == 4
    assert (third["done"], third["failed"]) == (2, 2)
    assert CircuitBreaker("yahoo").state() == "open"

    # the provider comes back, but the failed probe restarted the cool-down: still no request
    market.failing_symbols = set()
    fourth = run_job()
    assert (requests_made(), fourth["failed"]) == (4, 2)

    # the next probe succeeds: the circuit closes and every price is refreshed
    time.sleep(COOLDOWN + 0.05)
    fifth = run_job()
    assert requests_made() == 5
    assert (fifth["state"], fifth["done"], fifth["failed"]) == ("SUCCESS", 4, 0)
    assert CircuitBreaker("yahoo").state() == "closed"
    sixth = run_job()
    assert (requests_made(), sixth["done"], sixth["failed"]) == (6, 4, 0)
    assert (len(events("circuit_opened")), len(events("circuit_closed"))) == (1, 1)

    # nothing stored was lost or changed; the new closes are exactly the provider's
    yahoo_rows = [row for row in stored() if row[0].startswith("Y")]
    today = PriceHistory.objects.filter(instrument=dead[0]).exclude(date=OLD).get().date
    assert yahoo_rows == [("Y000", OLD, Decimal("123.45")), ("Y000", today, Decimal(stub_price("Y000"))),
                          ("Y001", OLD, Decimal("124.45")), ("Y001", today, Decimal(stub_price("Y001")))]
    initial, rows = dashboard(client, portfolio.pk)
    assert (initial["stale_count"], initial["providers_failing"]) == (0, [])
    assert (rows["Y000"]["stale"], rows["Y000"]["price"]) == (False, stub_price("Y000"))
