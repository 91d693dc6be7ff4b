"""Alpha Vantage client against a loopback stub: every answer is HTTP 200, the body tells."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from prices.models import PriceHistory
from prices.providers.alphavantage import AlphaVantageProvider
from prices.providers.base import (
    PermanentError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.gateway import PriceService
from prices.refresh.store import fetch_result_store
from tests.factories import InstrumentFactory
from tests.stubs import StubServer, html_response, json_response, text_response

KEY = "AVKEY123"
CLOCK = datetime(2019, 10, 7, 13, 0, tzinfo=UTC)

GLOBAL_QUOTE = (
    '{"Global Quote":{"01. symbol":"AAPL","02. open":"225.6400","03. high":"227.4900",'
    '"04. low":"223.8900","05. price":"225.9700","06. volume":"34619735",'
    '"07. latest trading day":"2019-10-04","08. previous close":"220.8200",'
    '"09. change":"5.1500","10. change percent":"2.3322%"}}'
)
SERIES = """{"Meta Data":{"1. Information":"Daily Prices (open, high, low, close) and Volumes",
 "2. Symbol":"IBM","3. Last Refreshed":"2022-04-22","4. Output Size":"Compact",
 "5. Time Zone":"US/Eastern"},
 "Time Series (Daily)":{
  "2022-04-22":{"1. open":"35.1000","2. high":"35.2000",
   "3. low":"33.9000","4. close":"34.0100","5. volume":"12001200"},
  "2022-04-21":{"1. open":"37.0000","2. high":"37.2000",
   "3. low":"34.4100","4. close":"34.6700","5. volume":"18502433"},
  "2022-04-20":{"1. open":"36.5000","2. high":"37.1000",
   "3. low":"36.2000","4. close":"36.9900","5. volume":"9001000"},
  "2022-04-19":{"1. open":"36.0000","2. high":"36.6000",
   "3. low":"35.8000","4. close":"36.4400","5. volume":"8001000"}}}"""

BURST = (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API requests more "
    "sparingly (1 request per second). You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to lift the free key rate limit (25 requests per day) "
    "and instantly unlock all premium endpoints"
)
OLD_NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and "
    "500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to "
    "target a higher API call frequency."
)
DAILY = (
    f"We have detected your API key as {KEY} and our standard API rate limit is 25 requests per "
    "day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ "
    "to instantly remove all daily rate limits."
)
PREMIUM = (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of "
    "the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium "
    "endpoints"
)
INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
)
BAD_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)


@pytest.fixture
def provider(stub: StubServer) -> AlphaVantageProvider:
    return AlphaVantageProvider(base_url=stub.url, api_key=KEY, timeout=1, clock=lambda: CLOCK)


def body(key: str, message: str) -> str:
    return f'{{"{key}": "{message}"}}'


def test_free_key_limits():
    assert AlphaVantageProvider.max_symbols_per_request == 1
    assert AlphaVantageProvider.daily_quota == 25
    assert AlphaVantageProvider.requests_per_second <= 5 / 60


def test_global_quote(stub, provider):
    stub.route("/query", json_response(GLOBAL_QUOTE))

    batch = provider.latest_quotes(["AAPL"])

    quote = batch.quotes["AAPL"]
    assert quote.price == Decimal("225.9700")
    assert quote.previous_close == Decimal("220.8200")
    # only the trading day is known: the quote is no newer than the end of that day
    assert quote.as_of == datetime(2019, 10, 5, tzinfo=UTC)
    assert batch.unknown == set()
    (request,) = stub.requests_to("/query")
    assert request.query == {"function": ["GLOBAL_QUOTE"], "symbol": ["AAPL"], "apikey": [KEY]}


def test_a_quote_of_today_is_as_of_now(stub):
    stub.route("/query", json_response(GLOBAL_QUOTE))
    now = datetime(2019, 10, 4, 18, 30, tzinfo=UTC)
    provider = AlphaVantageProvider(base_url=stub.url, api_key=KEY, timeout=1, clock=lambda: now)
    assert provider.latest_quotes(["AAPL"]).quotes["AAPL"].as_of == now


def test_an_empty_global_quote_is_unknown(stub, provider):
    stub.route("/query", json_response('{"Global Quote": {}}'))
    batch = provider.latest_quotes(["ZZZZ"])
    assert batch.quotes == {} and batch.unknown == {"ZZZZ"}


def test_an_invalid_call_for_a_quote_is_unknown(stub, provider):
    stub.route("/query", json_response(body("Error Message", INVALID_CALL)))
    batch = provider.latest_quotes(["ZZ$Z"])
    assert batch.quotes == {} and batch.unknown == {"ZZ$Z"}


def test_a_zero_price_is_missing_not_zero(stub, provider):
    stub.route("/query", json_response(GLOBAL_QUOTE.replace('"225.9700"', '"0.0000"')))
    batch = provider.latest_quotes(["AAPL"])
    assert batch.quotes == {} and batch.unknown == set()


def test_one_symbol_per_request(stub, provider):
    with pytest.raises(ValueError):
        provider.latest_quotes(["AAPL", "MSFT"])
    assert stub.requests == []


@pytest.mark.parametrize(
    ("key", "message", "error"),
    [
        ("Information", BURST, RateLimitedError),  # says "premium" and "per day", yet a throttle
        ("Note", OLD_NOTE, RateLimitedError),
        ("Note", "Please slow down.", RateLimitedError),
        ("Information", DAILY, QuotaExhaustedError),
        ("Information", PREMIUM, PermanentError),
        ("Information", "This endpoint is a PREMIUM feature.", PermanentError),
        ("Error Message", BAD_KEY, PermanentError),
    ],
)
def test_notices_and_errors_map_to_the_taxonomy(stub, provider, key, message, error):
    stub.route("/query", json_response(body(key, message)))
    with pytest.raises(error) as raised:
        provider.latest_quotes(["AAPL"])
    assert type(raised.value) is error
    assert KEY not in str(raised.value)  # Alpha Vantage echoes the key in its messages


@pytest.mark.parametrize(
    "response",
    [
        html_response(),
        json_response(GLOBAL_QUOTE[:60]),
        json_response('{"Something else": {}}'),
        text_response("Service Unavailable", status=503),
        json_response(GLOBAL_QUOTE, delay=1.0),
    ],
)
def test_garbage_slow_and_failing_answers_are_transient(stub, response):
    stub.route("/query", response)
    provider = AlphaVantageProvider(base_url=stub.url, api_key=KEY, timeout=0.2)
    with pytest.raises(TransientError):
        provider.latest_quotes(["AAPL"])


def test_http_429_is_rate_limited(stub, provider):
    stub.route(
        "/query", text_response("Too Many Requests", status=429, headers={"Retry-After": "60"})
    )
    with pytest.raises(RateLimitedError) as raised:
        provider.latest_quotes(["AAPL"])
    assert raised.value.retry_after == 60.0


def test_recent_history_is_a_compact_request_filtered_and_oldest_first(stub):
    stub.route("/query", json_response(SERIES))
    now = datetime(2022, 4, 25, 12, tzinfo=UTC)
    provider = AlphaVantageProvider(base_url=stub.url, api_key=KEY, timeout=1, clock=lambda: now)

    bars = provider.daily_history("IBM", date(2022, 4, 20), date(2022, 4, 21))

    assert [(b.date, b.close) for b in bars] == [
        (date(2022, 4, 20), Decimal("36.9900")),
        (date(2022, 4, 21), Decimal("34.6700")),
    ]
    (request,) = stub.requests_to("/query")
    assert request.query == {
        "function": ["TIME_SERIES_DAILY"],
        "outputsize": ["compact"],
        "symbol": ["IBM"],
        "apikey": [KEY],
    }


def test_older_history_asks_for_the_full_series(stub):
    stub.route("/query", json_response(SERIES))
    now = datetime(2022, 12, 1, 12, tzinfo=UTC)  # the start is 226 days back
    provider = AlphaVantageProvider(base_url=stub.url, api_key=KEY, timeout=1, clock=lambda: now)
    bars = provider.daily_history("IBM", date(2022, 4, 19), date(2022, 4, 22))
    assert [b.date for b in bars] == [date(2022, 4, d) for d in (19, 20, 21, 22)]
    assert stub.requests_to("/query")[0].param("outputsize") == "full"


def test_history_of_an_invalid_symbol_is_unknown(stub, provider):
    stub.route("/query", json_response(body("Error Message", INVALID_CALL)))
    with pytest.raises(UnknownSymbolError) as raised:
        provider.daily_history("ZZZZ", date(2022, 4, 19), date(2022, 4, 22))
    assert raised.value.symbol == "ZZZZ"


def test_full_history_being_premium_is_permanent(stub, provider):
    premium_full = (
        "Thank you for using Alpha Vantage! The **outputsize=full** parameter value is a premium "
        "feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium plans "
        "at https://www.alphavantage.co/premium/ to instantly unlock all premium features"
    )
    stub.route("/query", json_response(body("Information", premium_full)))
    with pytest.raises(PermanentError) as raised:
        provider.daily_history("IBM", date(2010, 1, 1), date(2022, 4, 22))
    assert not isinstance(raised.value, UnknownSymbolError)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (json_response(body("Information", BURST)), RateLimitedError),
        (json_response(body("Information", DAILY)), QuotaExhaustedError),
        (json_response('{"Meta Data": {}}'), TransientError),
        (json_response(SERIES[:200]), TransientError),
    ],
)
def test_history_failures_map_to_the_taxonomy(stub, provider, response, error):
    stub.route("/query", response)
    with pytest.raises(error):
        provider.daily_history("IBM", date(2022, 4, 19), date(2022, 4, 22))


AV_QUOTE = ('{"Global Quote":{"01. symbol":"X","05. price":"225.9700","07. latest trading day":"2024-03-21",'
            '"08. previous close":"220.8200"}}')


# Alpha Vantage's quote is placed at 00:00 UTC after its trading day: on an exchange east of UTC that is the
#    next local day, so Thursday's close is stored as Friday's (or Saturday's) and the price looks current.
@pytest.mark.django_db
def test_av_quote_is_stored_on_its_own_trading_day_east_of_utc(settings):
    friday_morning = datetime(2024, 3, 22, 6, 0, tzinfo=UTC)  # 06:00 in London, before the open
    instrument = InstrumentFactory(symbol="TSCO.LON", provider="alphavantage", currency="GBp", exchange_mic="XLON")
    settings.PROVIDER_LIMITS = {"alphavantage": {"requests_per_second": 1000.0, "daily_quota": 25, "batch_size": None}}
    with (stub := StubServer()).running():
        stub.route("/query", json_response(AV_QUOTE))  # latest trading day 2024-03-21, a Thursday
        provider = AlphaVantageProvider(base_url=stub.url, api_key="K", timeout=2, clock=lambda: friday_morning)
        result = PriceService(providers=lambda name: provider).batch_fetch_prices(["TSCO.LON"])
    fetch_result_store(instruments=[instrument], result=result, now=friday_morning)
    assert list(PriceHistory.objects.values_list("date", "close")) == [(date(2024, 3, 21), Decimal("225.97"))]
    # observed [(2024-03-22, 225.97)]: Thursday's close as Friday's, before Friday has traded
