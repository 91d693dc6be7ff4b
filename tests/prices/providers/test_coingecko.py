"""CoinGecko client against a loopback stub (base URL with the /api/v3 prefix, as in production)."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from prices.providers.base import (
    PermanentError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.coingecko import CoinGeckoProvider
from tests.stubs import StubServer, html_response, json_response, text_response

KEY = "CG-demo-key"
PRICE_PATH = "/api/v3/simple/price"
CLOCK = datetime(2024, 3, 27, 9, 15, tzinfo=UTC)

PRICES = (
    '{"bitcoin":{"usd":67187.34,"last_updated_at":1711356300},'
    '"ethereum":{"usd":3500.1,"last_updated_at":1711356290}}'
)
RATE_LIMITED = (
    '{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit. Please visit '
    'https://www.coingecko.com/en/api/pricing to subscribe to our API plans for higher rate '
    'limits."}}'
)
# Daily points at 00:00 UTC, and the live price of the last day at the end.
CHART = """{"prices":[[1711238400000,64037.4],[1711324800000,67187.3],[1711411200000,69958.8],
 [1711497600000,69987.1],[1711530900000,70101.25]],
 "market_caps":[[1711238400000,1.26e12],[1711324800000,1.32e12],[1711411200000,1.37e12],
 [1711497600000,1.37e12],[1711530900000,1.38e12]],
 "total_volumes":[[1711238400000,2.1e10],[1711324800000,3.5e10],[1711411200000,3.9e10],
 [1711497600000,3.2e10],[1711530900000,3.0e10]]}"""


@pytest.fixture
def provider(stub: StubServer) -> CoinGeckoProvider:
    return CoinGeckoProvider(
        base_url=f"{stub.url}/api/v3", api_key=KEY, timeout=1, clock=lambda: CLOCK
    )


def test_demo_plan_limits():
    assert CoinGeckoProvider.max_symbols_per_request == 50
    assert CoinGeckoProvider.requests_per_second == pytest.approx(0.5)


def test_latest_quotes_prices_known_ids_and_reports_absent_ones(stub, provider):
    stub.route(PRICE_PATH, json_response(PRICES))

    batch = provider.latest_quotes(["bitcoin", "ethereum", "not-a-coin"])

    assert batch.quotes["bitcoin"].price == Decimal("67187.34")
    assert batch.quotes["bitcoin"].as_of == datetime(2024, 3, 25, 8, 45, tzinfo=UTC)
    assert batch.quotes["bitcoin"].currency == "USD"
    assert batch.quotes["ethereum"].price == Decimal("3500.1")
    assert batch.quotes["ethereum"].as_of == datetime(2024, 3, 25, 8, 44, 50, tzinfo=UTC)
    assert batch.unknown == {"not-a-coin"}
    (request,) = stub.requests_to(PRICE_PATH)
    assert request.param("ids") == "bitcoin,ethereum,not-a-coin"
    assert request.param("vs_currencies") == "usd"
    assert request.param("include_last_updated_at") == "true"
    assert request.headers["x-cg-demo-api-key"] == KEY


def test_an_empty_body_means_every_id_is_unknown(stub, provider):
    stub.route(PRICE_PATH, json_response("{}"))
    batch = provider.latest_quotes(["zzz-coin", "yyy-coin"])
    assert batch.quotes == {} and batch.unknown == {"zzz-coin", "yyy-coin"}


def test_without_a_key_no_key_header_is_sent(stub):
    stub.route(PRICE_PATH, json_response(PRICES))
    CoinGeckoProvider(base_url=f"{stub.url}/api/v3", api_key="", timeout=1).latest_quotes(
        ["bitcoin"]
    )
    assert "x-cg-demo-api-key" not in stub.requests_to(PRICE_PATH)[0].headers


@pytest.mark.parametrize("price", ["null", "0", "-1", '"abc"'])
def test_an_unusable_price_is_missing_not_zero(stub, provider, price):
    stub.route(
        PRICE_PATH,
        json_response(
            f'{{"bitcoin":{{"usd":{price},"last_updated_at":1711356300}},'
            '"ethereum":{"usd":3500.1,"last_updated_at":1711356290}}'
        ),
    )
    batch = provider.latest_quotes(["bitcoin", "ethereum"])
    assert set(batch.quotes) == {"ethereum"}
    assert batch.unknown == set()


@pytest.mark.parametrize(("headers", "retry_after"), [({}, None), ({"retry-after": "45"}, 45.0)])
def test_http_429_is_rate_limited_with_its_retry_after(stub, provider, headers, retry_after):
    stub.route(PRICE_PATH, json_response(RATE_LIMITED, status=429, headers=headers))
    with pytest.raises(RateLimitedError) as raised:
        provider.latest_quotes(["bitcoin"])
    assert raised.value.retry_after == retry_after


def test_a_rate_limit_body_with_http_200_is_rate_limited(stub, provider):
    stub.route(PRICE_PATH, json_response(RATE_LIMITED))
    with pytest.raises(RateLimitedError):
        provider.latest_quotes(["bitcoin"])


def test_a_coin_called_status_is_not_mistaken_for_an_error(stub, provider):
    stub.route(PRICE_PATH, json_response('{"status":{"usd":0.0123,"last_updated_at":1711356300}}'))
    batch = provider.latest_quotes(["status"])
    assert batch.quotes["status"].price == Decimal("0.0123")


def test_a_bad_key_is_permanent(stub, provider):
    stub.route(
        PRICE_PATH,
        json_response(
            '{"status":{"error_code":10002,"error_message":"API Key Missing"}}', status=401
        ),
    )
    with pytest.raises(PermanentError):
        provider.latest_quotes(["bitcoin"])


@pytest.mark.parametrize(
    "response",
    [
        html_response(),
        json_response(PRICES[:30]),
        text_response("error code: 502", status=502),
        json_response(PRICES, delay=1.0),
    ],
)
def test_garbage_slow_and_failing_answers_are_transient(stub, response):
    stub.route(PRICE_PATH, response)
    provider = CoinGeckoProvider(base_url=f"{stub.url}/api/v3", timeout=0.2)
    with pytest.raises(TransientError):
        provider.latest_quotes(["bitcoin"])


def test_daily_history_is_utc_dated_filtered_and_keeps_a_days_last_point(stub, provider):
    stub.route("/api/v3/coins/bitcoin/market_chart", json_response(CHART))

    bars = provider.daily_history("bitcoin", date(2024, 3, 25), date(2024, 3, 27))

    assert [(b.date, b.close) for b in bars] == [
        (date(2024, 3, 25), Decimal("67187.3")),
        (date(2024, 3, 26), Decimal("69958.8")),
        (date(2024, 3, 27), Decimal("70101.25")),  # the later of the day's two points
    ]
    (request,) = stub.requests_to("/api/v3/coins/bitcoin/market_chart")
    assert request.param("vs_currency") == "usd"
    assert request.param("days") == "3"  # from the clock's date back to the start, inclusive
    assert request.param("interval") == "daily"
    assert request.headers["x-cg-demo-api-key"] == KEY


def test_history_ending_before_today_still_reaches_back_to_the_start(stub, provider):
    stub.route("/api/v3/coins/bitcoin/market_chart", json_response(CHART))
    bars = provider.daily_history("bitcoin", date(2024, 3, 24), date(2024, 3, 25))
    assert [b.date for b in bars] == [date(2024, 3, 24), date(2024, 3, 25)]
    assert stub.requests_to("/api/v3/coins/bitcoin/market_chart")[0].param("days") == "4"


def test_history_of_an_unknown_coin_is_unknown(stub, provider):
    stub.route(
        "/api/v3/coins/not-a-coin/market_chart",
        json_response('{"error":"coin not found"}', status=404),
    )
    with pytest.raises(UnknownSymbolError) as raised:
        provider.daily_history("not-a-coin", date(2024, 3, 25), date(2024, 3, 27))
    assert raised.value.symbol == "not-a-coin"


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (json_response(RATE_LIMITED, status=429, headers={"Retry-After": "60"}), RateLimitedError),
        (text_response("oops", status=500), TransientError),
        (html_response(), TransientError),
        (json_response('{"market_caps":[]}'), TransientError),
        (json_response(CHART[:100]), TransientError),
    ],
)
def test_history_failures_map_to_the_taxonomy(stub, provider, response, error):
    stub.route("/api/v3/coins/bitcoin/market_chart", response)
    with pytest.raises(error) as raised:
        provider.daily_history("bitcoin", date(2024, 3, 25), date(2024, 3, 27))
    if error is RateLimitedError:
        assert raised.value.retry_after == 60.0
