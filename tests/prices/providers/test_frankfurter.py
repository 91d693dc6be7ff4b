"""Frankfurter FX client against a loopback stub (base URL with the /v1 prefix)."""

from datetime import date
from decimal import Decimal

import pytest

from prices.providers.base import PermanentError, TransientError
from prices.providers.frankfurter import FrankfurterClient
from tests.stubs import StubServer, html_response, json_response, text_response

LATEST = '{"amount":1.0,"base":"USD","date":"2026-10-07","rates":{"EUR":0.89469,"GBP":0.75}}'
SERIES = (
    '{"amount":1.0,"base":"USD","start_date":"2023-12-29","end_date":"2024-01-05",'
    '"rates":{"2023-12-29":{"CAD":1.3251},"2024-01-02":{"CAD":1.3294},'
    '"2024-01-03":{"CAD":1.3339},"2024-01-05":{"CAD":1.3362}}}'
)


@pytest.fixture
def client(stub: StubServer) -> FrankfurterClient:
    return FrankfurterClient(base_url=f"{stub.url}/v1", timeout=1)


def test_latest_rates(stub, client):
    stub.route("/v1/latest", json_response(LATEST))

    day, rates = client.latest("usd", ["EUR", "gbp"])

    assert day == date(2026, 10, 7)
    assert rates == {"EUR": Decimal("0.89469"), "GBP": Decimal("0.75")}
    (request,) = stub.requests_to("/v1/latest")
    assert request.param("base") == "USD"
    assert request.param("symbols") == "EUR,GBP"


def test_series_by_business_day(stub, client):
    stub.route("/v1/2024-01-01..2024-01-05", json_response(SERIES))

    series = client.series("USD", ["CAD"], date(2024, 1, 1), date(2024, 1, 5))

    # the last rate before a holiday start is the one in force on it; weekends/holidays absent
    assert series == {
        date(2023, 12, 29): {"CAD": Decimal("1.3251")},
        date(2024, 1, 2): {"CAD": Decimal("1.3294")},
        date(2024, 1, 3): {"CAD": Decimal("1.3339")},
        date(2024, 1, 5): {"CAD": Decimal("1.3362")},
    }
    assert list(series) == sorted(series)
    (request,) = stub.requests_to("/v1/2024-01-01..2024-01-05")
    assert (request.param("base"), request.param("symbols")) == ("USD", "CAD")


def test_null_or_zero_rates_are_dropped(stub, client):
    stub.route(
        "/v1/latest",
        json_response('{"amount":1.0,"base":"USD","date":"2026-10-07","rates":{"EUR":null,"GBP":0}}'),
    )
    assert client.latest("USD", ["EUR", "GBP"]) == (date(2026, 10, 7), {})


@pytest.mark.parametrize(
    "response",
    [
        json_response('{"message":"not found"}', status=404),
        json_response('{"message":"bad currency pair"}', status=422),
    ],
)
def test_unknown_currencies_and_bad_pairs_are_permanent(stub, client, response):
    stub.route("/v1/latest", response)
    with pytest.raises(PermanentError):
        client.latest("USD", ["XXX"])


@pytest.mark.parametrize(
    "response",
    [
        html_response(),
        json_response(LATEST[:40]),
        json_response('{"amount":1.0,"base":"USD"}'),
        text_response("Bad Gateway", status=502),
        json_response(LATEST, delay=1.0),
    ],
)
def test_garbage_slow_and_failing_answers_are_transient(stub, response):
    stub.route("/v1/latest", response)
    client = FrankfurterClient(base_url=f"{stub.url}/v1", timeout=0.2)
    with pytest.raises(TransientError):
        client.latest("USD", ["EUR"])
