"""Stooq client against a loopback stub: CRLF CSV, N/D rows, plain-text errors, HTML pages."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from prices.providers.base import (
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.stooq import StooqProvider
from tests.stubs import StubServer, csv_response, html_response, text_response

KEY = "stooq-key"
QUOTES = (
    "Symbol,Date,Time,Open,High,Low,Close,Volume\r\n"
    "AAPL.US,2026-10-02,22:00:00,225.1,228.0,224.3,227.5,52341234\r\n"
    "VOD.UK,2026-12-02,17:35:12,72.1,72.9,71.8,72.41,40123000\r\n"
    "ZZZZ.US,N/D,N/D,N/D,N/D,N/D,N/D,N/D\r\n"
)
HISTORY = (
    "Date,Open,High,Low,Close,Volume\r\n"
    "2024-01-02,187.15,188.44,183.885,185.64,82488674\r\n"
    "2024-01-03,184.22,185.88,183.43,184.25,58414460\r\n"
    "2024-01-04,182.15,183.0872,180.88,181.91,71983570\r\n"
)
DAILY_LIMIT = "Exceeded the daily hits limit"


@pytest.fixture
def provider(stub: StubServer) -> StooqProvider:
    return StooqProvider(base_url=stub.url, api_key=KEY, timeout=1)


def test_latest_quotes_parse_the_batch_csv(stub, provider):
    stub.route("/q/l/", csv_response(QUOTES))

    batch = provider.latest_quotes(["aapl.us", "vod.uk", "zzzz.us"])

    aapl = batch.quotes["aapl.us"]
    assert aapl.price == Decimal("227.5")
    # Stooq's clock is Warsaw's: 22:00 CEST is 20:00 UTC, and 17:35 CET in December 16:35 UTC
    assert aapl.as_of == datetime(2026, 10, 2, 20, 0, tzinfo=UTC)
    assert batch.quotes["vod.uk"].price == Decimal("72.41")
    assert batch.quotes["vod.uk"].as_of == datetime(2026, 12, 2, 16, 35, 12, tzinfo=UTC)
    assert batch.unknown == {"zzzz.us"}
    (request,) = stub.requests_to("/q/l/")
    # the exact query Stooq expects: symbols joined by "+", a bare `h` flag, the key last
    assert request.raw_path == f"/q/l/?s=aapl.us+vod.uk+zzzz.us&f=sd2t2ohlcv&h&e=csv&apikey={KEY}"
    assert request.headers["user-agent"].startswith("Mozilla/5.0")


def test_index_symbols_are_escaped(stub, provider):
    stub.route("/q/l/", csv_response("Symbol,Date,Time,Open,High,Low,Close,Volume\r\n"
                                     "^SPX,2026-10-02,22:00:00,6700.1,6720.5,6690.0,6715.25,\r\n"))
    batch = provider.latest_quotes(["^spx"])
    assert batch.quotes["^spx"].price == Decimal("6715.25")
    assert stub.requests_to("/q/l/")[0].raw_path.startswith("/q/l/?s=%5Espx&")


def test_no_key_means_no_apikey(stub):
    stub.route("/q/l/", csv_response(QUOTES))
    StooqProvider(base_url=stub.url, api_key="", timeout=1).latest_quotes(["aapl.us"])
    assert stub.requests_to("/q/l/")[0].raw_path == "/q/l/?s=aapl.us&f=sd2t2ohlcv&h&e=csv"


def test_a_row_without_a_usable_close_is_missing_not_zero(stub, provider):
    stub.route("/q/l/", csv_response("Symbol,Date,Time,Open,High,Low,Close,Volume\r\n"
                                     "AAPL.US,2026-10-02,22:00:00,225.1,228.0,224.3,0,0\r\n"))
    batch = provider.latest_quotes(["aapl.us"])
    assert batch.quotes == {} and batch.unknown == set()


@pytest.mark.parametrize(
    "response",
    [
        html_response(),  # a bot wall or error page served with HTTP 200
        csv_response(QUOTES[:80]),  # cut in the middle of a row
        text_response("Something went wrong"),
        text_response("upstream", status=503),
        csv_response(QUOTES, delay=1.0),
    ],
)
def test_garbage_slow_and_failing_quote_answers_are_transient(stub, response):
    stub.route("/q/l/", response)
    provider = StooqProvider(base_url=stub.url, api_key=KEY, timeout=0.2)
    with pytest.raises(TransientError):
        provider.latest_quotes(["aapl.us", "vod.uk"])


@pytest.mark.parametrize("path", ["/q/l/", "/q/d/l/"])
def test_the_daily_hits_limit_is_quota_exhausted(stub, provider, path):
    stub.route(path, text_response(DAILY_LIMIT))
    with pytest.raises(QuotaExhaustedError):
        if path == "/q/l/":
            provider.latest_quotes(["aapl.us"])
        else:
            provider.daily_history("aapl.us", date(2024, 1, 2), date(2024, 1, 4))


def test_http_429_is_rate_limited(stub, provider):
    stub.route(
        "/q/l/", text_response("Too many requests", status=429, headers={"Retry-After": "90"})
    )
    with pytest.raises(RateLimitedError) as raised:
        provider.latest_quotes(["aapl.us"])
    assert raised.value.retry_after == 90.0


def test_daily_history_parses_the_csv_in_range(stub, provider):
    stub.route("/q/d/l/", csv_response(HISTORY))

    bars = provider.daily_history("aapl.us", date(2024, 1, 3), date(2024, 1, 4))

    assert [(b.date, b.close, b.adjusted_close) for b in bars] == [
        (date(2024, 1, 3), Decimal("184.25"), None),
        (date(2024, 1, 4), Decimal("181.91"), None),
    ]
    (request,) = stub.requests_to("/q/d/l/")
    assert request.query == {
        "s": ["aapl.us"],
        "i": ["d"],
        "d1": ["20240103"],
        "d2": ["20240104"],
        "apikey": [KEY],
    }


def test_history_of_an_unknown_symbol_is_unknown(stub, provider):
    stub.route("/q/d/l/", text_response("No data"))
    with pytest.raises(UnknownSymbolError) as raised:
        provider.daily_history("zzzz.us", date(2024, 1, 2), date(2024, 1, 4))
    assert raised.value.symbol == "zzzz.us"


@pytest.mark.parametrize(
    "response",
    [
        html_response(),
        csv_response(HISTORY[:-12]),  # last row cut inside its close
        csv_response("Date,Open,High\r\n2024-01-02,1,2\r\n"),  # not the history columns
        csv_response("Date,Open,High,Low,Close,Volume\r\nyesterday,1,2,3,4,5\r\n"),
        text_response("bad gateway", status=502),
    ],
)
def test_garbage_history_answers_are_transient(stub, provider, response):
    stub.route("/q/d/l/", response)
    with pytest.raises(TransientError):
        provider.daily_history("aapl.us", date(2024, 1, 2), date(2024, 1, 4))
