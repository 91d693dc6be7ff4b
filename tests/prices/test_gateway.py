"""PriceService against a loopback Yahoo: batching, retries, isolation, concurrency, pacing, quotas."""

import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest

from prices.models import PriceHistory
from prices.providers.alphavantage import AlphaVantageProvider
from prices.providers.coingecko import CoinGeckoProvider
from prices.providers.gateway import PriceService
from prices.providers.stooq import StooqProvider
from prices.providers.yahoo import YahooProvider
from prices.refresh.run import prices_refresh
from tests.factories import InstrumentFactory, PriceFactory
from tests.stubs import StubServer, json_response, text_response
from tests.stubs.market import Injected, MarketStub, stub_price

pytestmark = pytest.mark.django_db


@pytest.fixture
def market() -> Iterator[MarketStub]:
    stub = MarketStub()
    with stub.running():
        yield stub


@pytest.fixture(autouse=True)
def fast_pacing(settings):
    """Generous limits and millisecond backoff, unless a test says otherwise."""
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
    settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.05
    settings.PROVIDER_MAX_ATTEMPTS = 4
    settings.CIRCUIT_FAILURE_THRESHOLD = 100


def service_for(market: MarketStub) -> PriceService:
    provider = YahooProvider(base_url=market.url, timeout=2)
    return PriceService(providers=lambda name: provider)


def instruments(count: int, prefix: str = "S"):
    return [InstrumentFactory(symbol=f"{prefix}{n:03d}", provider="yahoo") for n in range(count)]


def test_symbols_are_deduped_and_split_into_provider_sized_batches(market):
    symbols = [i.symbol for i in instruments(120)]
    result = service_for(market).batch_fetch_prices(symbols + symbols[:30] + ["s001"])
    assert sorted(len(batch) for batch in market.quote_requests) == [20, 50, 50]
    assert result.requests == 3
    assert len(result.quotes) == 120
    assert result.quotes["S007"].price == Decimal(stub_price("S007"))
    assert result.failures == {} and result.unknown == set()


def test_unknown_symbols_are_reported_never_priced(market):
    InstrumentFactory(symbol="AAPL", provider="yahoo")
    InstrumentFactory(symbol="ZZNOPE", provider="yahoo")
    result = service_for(market).batch_fetch_prices(["AAPL", "ZZNOPE", "NOTANINSTRUMENT"])
    assert set(result.quotes) == {"AAPL"}
    assert result.unknown == {"ZZNOPE"}
    assert result.failures == {"NOTANINSTRUMENT": "not an instrument Folio knows"}


def test_a_failing_batch_is_retried_then_isolated(market):
    symbols = [i.symbol for i in instruments(120)]
    market.failing_symbols = {"S060"}  # in the second batch of 50
    result = service_for(market).batch_fetch_prices(symbols)
    assert len(result.quotes) == 70
    assert set(result.failures) == set(symbols[50:100])
    assert "TransientError" in result.failures["S060"]
    assert result.requests == 1 + 4 + 1  # the bad batch had its 4 attempts, the others one each


def test_a_5xx_then_success_costs_one_retry(market):
    instruments(3)
    market.injected = {1: Injected(503, "<html>Service Unavailable</html>", "text/html")}
    result = service_for(market).batch_fetch_prices(["S000", "S001", "S002"])
    assert len(result.quotes) == 3
    assert result.requests == 2


def test_retry_after_is_honoured(market):
    instruments(1)
    market.injected = {1: Injected(429, "Edge: Too Many Requests", "text/plain", {"Retry-After": "1"})}
    started = time.monotonic()
    result = service_for(market).batch_fetch_prices(["S000"])
    assert set(result.quotes) == {"S000"}
    assert time.monotonic() - started >= 1.0
    assert market.request_times[1] - market.request_times[0] >= 1.0


def test_garbage_bodies_are_retried_and_never_stored(market):
    (instrument,) = instruments(1)
    PriceFactory(instrument=instrument, date=date(2026, 1, 2), close=Decimal("123.45"))
    market.injected = {n: Injected(200, '{"quoteResponse": {"resu', "application/json") for n in range(1, 5)}
    summary = prices_refresh(instruments=[instrument], service=service_for(market), force=True)
    assert set(summary.failures) == {"S000"} and summary.requests == 4
    assert list(PriceHistory.objects.values_list("date", "close")) == [(date(2026, 1, 2), Decimal("123.45"))]


def test_parallel_fetch_is_really_concurrent_and_bounded_per_provider(market, settings):
    market.latency = 0.5
    symbols = [i.symbol for i in instruments(400)]  # 8 batches of 50
    started = time.monotonic()
    result = service_for(market).fetch_prices_parallel(symbols, concurrency=4)
    elapsed = time.monotonic() - started
    assert len(result.quotes) == 400
    assert market.max_in_flight == 4
    # 1 s at 4 in flight against the sequential 4 s: the latency is long enough that a loaded machine's
    # overhead (parsing 400 quotes, threads waiting for a core) stays well inside the margin
    assert elapsed < 8 * 0.5 * 0.6


def test_parallel_fetch_still_respects_the_global_rate(market, settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 10.0, "burst": 1, "daily_quota": None,
                                          "batch_size": 5}}
    symbols = [i.symbol for i in instruments(50)]  # 10 batches
    result = service_for(market).fetch_prices_parallel(symbols, concurrency=8)
    assert len(result.quotes) == 50
    span = market.request_times[-1] - market.request_times[0]
    # 10 requests at 10/s leave at least 9 intervals of 0.1 s between their tokens; seen at the stub, each
    # arrival may lag its token by a scheduling delay, so the bound leaves room for that, and still fails
    # unpaced (~0 s) or at twice the rate (0.45 s)
    assert span >= 0.7


def test_the_daily_quota_is_never_exceeded(market, settings):
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": 3, "batch_size": 10}}
    symbols = [i.symbol for i in instruments(50)]  # 5 batches, 3 requests allowed today
    service = service_for(market)
    first = service.batch_fetch_prices(symbols)
    second = service.batch_fetch_prices(symbols)
    assert len(market.quote_requests) == 3
    assert len(first.quotes) == 30 and len(second.quotes) == 0
    assert all("QuotaExhaustedError" in reason for reason in second.failures.values())


def test_the_circuit_opens_and_spares_the_provider(market, settings):
    settings.CIRCUIT_FAILURE_THRESHOLD = 3
    settings.PROVIDER_LIMITS = {"yahoo": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": 10}}
    symbols = [i.symbol for i in instruments(50)]
    market.failing_symbols = set(symbols)
    result = service_for(market).batch_fetch_prices(symbols)
    assert len(market.quote_requests) == 3  # then the circuit is open: no more calls
    # the batch that tripped it ends on the open circuit too; the rest never reach the wire
    assert len(result.failures) == 50
    assert all("CircuitOpenError" in reason for reason in result.failures.values())


AV_QUOTE = ('{"Global Quote":{"01. symbol":"X","05. price":"225.9700","07. latest trading day":"2024-03-21",'
            '"08. previous close":"220.8200"}}')
AV_MINUTE_NOTE = ("Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and "
                  "500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to "
                  "target a higher API call frequency.")


class TimedStub(StubServer):
    """The stub server, also noting when each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def _record(self, request):
        self.times.append(time.monotonic())
        return super()._record(request)


@pytest.fixture
def fast(settings):
    """Millisecond backoff for the providers these cases stub (fast_pacing sets only Yahoo's limits)."""
    settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.05
    settings.PROVIDER_MAX_ATTEMPTS = 4


def only(provider):
    return PriceService(providers=lambda name: provider)


# The daily quota is charged for attempts that never reach the provider (a token not granted in time).
def test_av_quota_is_not_spent_on_requests_never_made(fast, settings):
    settings.PROVIDER_LIMITS = {"alphavantage": {"requests_per_second": 0.01, "daily_quota": 25, "batch_size": None}}
    settings.PROVIDER_MAX_WAIT_SECONDS = 0.3
    for symbol in ("IBM", "KO"):
        InstrumentFactory(symbol=symbol, provider="alphavantage")
    with (stub := StubServer()).running():
        stub.route("/query", json_response(AV_QUOTE))
        service = only(AlphaVantageProvider(base_url=stub.url, api_key="K", timeout=2))
        service.batch_fetch_prices(["IBM", "KO"])  # one token now, the next in 100 s: KO waits for a later run
        made = len(stub.requests)
    assert made == 1
    assert service.gate("alphavantage").quota.used() == made  # observed 5: 4 of 25 spent on nothing


# A per-minute throttle note is retried within the same minute: every retry is refused and costs the day's quota.
def test_av_per_minute_throttle_is_not_retried_within_the_minute(fast, settings):
    settings.PROVIDER_LIMITS = {"alphavantage": {"requests_per_second": 1000.0, "daily_quota": 25, "batch_size": None}}
    InstrumentFactory(symbol="IBM", provider="alphavantage")
    with (stub := TimedStub()).running():
        stub.route("/query", json_response(f'{{"Note":"{AV_MINUTE_NOTE}"}}'))
        only(AlphaVantageProvider(base_url=stub.url, api_key="K", timeout=2)).batch_fetch_prices(["IBM"])
    early = [t for t in stub.times[1:] if t - stub.times[0] < 60]
    assert early == []  # observed 3 retries within ~0.1 s, each refused and each counted by Alpha Vantage


# Stooq's "Exceeded the daily hits limit" does not stop the day (docs: "a limit body stops the day").
def test_stooq_daily_limit_body_stops_the_day(fast):
    for symbol in ("AAPL", "MSFT"):
        InstrumentFactory(symbol=symbol, provider="stooq", provider_symbol=f"{symbol.lower()}.us")
    with (stub := StubServer()).running():
        stub.route("/q/l/", text_response("Exceeded the daily hits limit"))
        service = only(StooqProvider(base_url=stub.url, api_key="K", timeout=2))
        first = service.batch_fetch_prices(["AAPL"])
        second = service.batch_fetch_prices(["MSFT"])  # a later batch, or the next refresh 5 minutes on
    assert "QuotaExhaustedError" in first.failures["AAPL"] and "QuotaExhaustedError" in second.failures["MSFT"]
    assert len(stub.requests) == 1  # observed 2: every batch of every refresh asks again all day


# A Retry-After longer than PROVIDER_MAX_WAIT_SECONDS is cut short: the batch retries while still refused.
def test_retry_after_beyond_the_max_wait_is_not_retried_early(fast, settings):
    settings.PROVIDER_MAX_WAIT_SECONDS = 0.2  # the default is 60: the same with Retry-After: 120
    settings.PROVIDER_LIMITS = {"coingecko": {"requests_per_second": 1000.0, "daily_quota": None, "batch_size": None}}
    InstrumentFactory(symbol="BTC", provider="coingecko", provider_symbol="bitcoin", asset_class="crypto",
                      exchange_mic="")
    body = '{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit."}}'
    with (stub := StubServer()).running():
        stub.route("/simple/price", json_response(body, status=429, headers={"retry-after": "120"}))
        result = only(CoinGeckoProvider(base_url=stub.url, timeout=2)).batch_fetch_prices(["BTC"])
    assert "RateLimitedError" in result.failures["BTC"]
    assert len(stub.requests) == 1  # observed 4, all inside the 120 s CoinGecko asked for


def test_a_spent_day_fails_at_once_without_waiting_for_tokens(settings):
    # Alpha Vantage's pace scaled down: a token every 2 s (its own: every 12 s), 25 a day
    settings.PROVIDER_LIMITS = {"alphavantage": {"requests_per_second": 0.5, "daily_quota": 25, "batch_size": None}}
    settings.PROVIDER_BACKOFF_INITIAL_SECONDS = 0.01
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 0.05
    symbols = ["IBM", "KO", "PEP", "MSFT"]
    for symbol in symbols:
        InstrumentFactory(symbol=symbol, provider="alphavantage")
    with (stub := StubServer()).running():
        stub.route("/query", json_response(AV_QUOTE))
        service = PriceService(providers=lambda name: AlphaVantageProvider(base_url=stub.url, api_key="K", timeout=2))
        # the provider says the day's calls are spent (after one request that took the token)
        service.batch_fetch_prices(["IBM"])
        service.gate("alphavantage").quota.exhaust()

        started = time.monotonic()
        result = service.batch_fetch_prices(["KO", "PEP", "MSFT"])
        took = time.monotonic() - started
    assert all("QuotaExhaustedError" in reason for reason in result.failures.values())
    assert len(stub.requests) == 1
    # observed ≈ 6 s: each of the three batches waited 2 s for a token it then wasted (Alpha Vantage: 36 s)
    assert took < 1.0
