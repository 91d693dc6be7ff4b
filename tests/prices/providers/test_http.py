"""The shared HTTP layer: settings, timeouts, pooling, transport failures mapped to the taxonomy."""

import socket
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from prices.providers import PROVIDER_CLASSES, provider_get
from prices.providers.base import PermanentError, PriceProvider, RateLimitedError, TransientError
from prices.providers.http import HttpClient, price_parse, retry_after_parse, utc_from_unix
from prices.providers.stooq import StooqProvider
from tests.stubs import StubServer, html_response, json_response, text_response

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("0", 0.0),
        (" 2.5 ", 2.5),
        ("Mon, 02 Mar 2026 12:01:30 GMT", 90.0),
        ("Mon, 02 Mar 2026 11:59:00 GMT", 0.0),  # in the past: no wait, never negative
        ("-5", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(header, expected):
    assert retry_after_parse(header, now=NOW) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Decimal("182.00000"), Decimal("182.00000")),
        ("327.79999", Decimal("327.79999")),
        (7, Decimal(7)),
        ({"raw": Decimal("1.5"), "fmt": "1.50"}, Decimal("1.5")),
        (None, None),
        (Decimal("0"), None),
        ("0.0000", None),
        ("-1.2", None),
        ("N/D", None),
        ("", None),
        (Decimal("NaN"), None),
        (Decimal("Infinity"), None),
        (True, None),
        (1.5, None),  # a float already lost the wire's digits: refused, not rounded
    ],
)
def test_price_parse_returns_only_positive_finite_decimals(raw, expected):
    assert price_parse(raw) == expected


def test_utc_from_unix():
    assert utc_from_unix(1635969603) == datetime(2021, 11, 3, 20, 0, 3, tzinfo=UTC)
    assert utc_from_unix(None) is None
    assert utc_from_unix(0) is None
    assert utc_from_unix("soon") is None


def test_base_url_key_and_timeout_come_from_settings(stub: StubServer, settings):
    # given settings pointing the stooq provider at the stub, with a key and a short timeout
    settings.PROVIDERS = {**settings.PROVIDERS, "stooq": {"base_url": stub.url, "api_key": "K3Y"}}
    settings.PROVIDER_TIMEOUT_SECONDS = 0.2
    stub.route("/q/d/l/", text_response("No data", delay=1.0))
    provider = StooqProvider()
    # when the stub answers after the settings' timeout
    started = time.monotonic()
    with pytest.raises(TransientError):
        provider.daily_history("aapl.us", datetime(2024, 1, 2).date(), datetime(2024, 1, 3).date())
    # then the call gave up at about that timeout, having sent the settings' key
    assert time.monotonic() - started < 0.8
    assert stub.requests_to("/q/d/l/")[0].param("apikey") == "K3Y"


def test_constructor_arguments_override_settings(stub: StubServer, settings):
    settings.PROVIDERS = {
        **settings.PROVIDERS,
        "stooq": {"base_url": "http://127.0.0.1:9/nowhere", "api_key": "FROM-SETTINGS"},
    }
    client = HttpClient("stooq", base_url=stub.url + "/", api_key="FROM-ARG", timeout=1.5)
    assert (client.base_url, client.api_key, client.timeout) == (stub.url, "FROM-ARG", 1.5)
    # an empty key means "no key", even when settings have one
    assert HttpClient("stooq", base_url=stub.url, api_key="").api_key is None


def test_a_slow_server_is_a_transient_error(stub: StubServer):
    stub.route("/slow", text_response("late", delay=1.0))
    client = HttpClient("stooq", base_url=stub.url, timeout=0.2)
    started = time.monotonic()
    with pytest.raises(TransientError, match="Timeout"):
        client.get("/slow")
    assert time.monotonic() - started < 0.8


def test_a_trickling_body_is_cut_off_by_the_total_deadline(stub: StubServer):
    # every pause (0.1 s) is within the 0.3 s socket timeout, but the whole body takes 1.5 s
    stub.route("/trickle", text_response("x" * 15, chunks=15, chunk_delay=0.1))
    client = HttpClient("stooq", base_url=stub.url, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TransientError, match="deadline"):
        client.get("/trickle")
    assert time.monotonic() - started < 1.3


def test_a_truncated_body_is_a_transient_error(stub: StubServer):
    stub.route("/cut", json_response('{"bitcoin":{"usd":67187.34}}', truncate_at=12))
    client = HttpClient("coingecko", base_url=stub.url, timeout=1)
    with pytest.raises(TransientError):
        client.get("/cut")


def test_a_refused_connection_is_transient_and_never_shows_the_key():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpClient("stooq", base_url=f"http://127.0.0.1:{port}", api_key="S3CRET", timeout=1)
    with pytest.raises(TransientError) as raised:
        client.get("/q/d/l/", params={"s": "aapl.us", "apikey": "S3CRET"})
    assert "S3CRET" not in str(raised.value)
    assert "***" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    ("response", "error", "retry_after"),
    [
        (text_response("Edge: Too Many Requests", status=429), RateLimitedError, None),
        (
            text_response("slow down", status=429, headers={"Retry-After": "17"}),
            RateLimitedError,
            17,
        ),
        (text_response("oops", status=500), TransientError, None),
        (text_response("bad gateway", status=502), TransientError, None),
        (html_response(status=403), TransientError, None),  # a bot wall, not the API
        (json_response('{"message":"not found"}', status=404), PermanentError, None),
        (json_response('{"message":"unprocessable"}', status=422), PermanentError, None),
    ],
)
def test_status_codes_map_to_the_taxonomy(stub: StubServer, response, error, retry_after):
    stub.route("/x", response)
    client = HttpClient("frankfurter", base_url=stub.url, timeout=1)
    reply = client.get("/x")
    with pytest.raises(error) as raised:
        client.raise_for_status(reply)
    assert type(raised.value) is error
    if error is RateLimitedError:
        assert raised.value.retry_after == retry_after


@pytest.mark.parametrize(
    "response",
    [
        html_response(),
        json_response('{"rates": {"EUR": 0.89'),  # truncated
        json_response(""),
        text_response("Service temporarily unavailable"),
    ],
)
def test_bodies_that_are_not_json_are_transient(stub: StubServer, response):
    stub.route("/x", response)
    client = HttpClient("frankfurter", base_url=stub.url, timeout=1)
    with pytest.raises(TransientError):
        client.json(client.get("/x"))


def test_json_numbers_are_exact_decimals(stub: StubServer):
    stub.route("/x", json_response('{"a": 0.1, "b": 67187.34, "n": 7}'))
    client = HttpClient("frankfurter", base_url=stub.url, timeout=1)
    assert client.json(client.get("/x")) == {"a": Decimal("0.1"), "b": Decimal("67187.34"), "n": 7}


def test_one_pooled_session_reuses_its_connection_and_allows_parallel_calls(stub: StubServer):
    stub.route("/x", json_response("{}", delay=0.3))
    # (held long enough that four threads started one after the other overlap even on a busy machine: at 0.3 s each,
    # a loaded CI machine once started the fourth after the first had been answered)
    stub.route("/slow", json_response("{}", delay=3))
    client = HttpClient("coingecko", base_url=stub.url, timeout=10)
    # sequential calls ride one kept-alive connection
    client.get("/x")
    client.get("/x")
    first, second = stub.requests_to("/x")
    assert first.client_port == second.client_port
    # and threads sharing the client are not serialised
    threads = [threading.Thread(target=client.get, args=("/slow",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stub.max_in_flight == 4
    assert len(stub.requests_to("/slow")) == 4


def test_every_registered_provider_builds_from_settings():
    for name, dotted in PROVIDER_CLASSES.items():
        provider = provider_get(name)
        assert isinstance(provider, PriceProvider)
        assert f"{type(provider).__module__}.{type(provider).__name__}" == dotted
        assert provider.name == name
