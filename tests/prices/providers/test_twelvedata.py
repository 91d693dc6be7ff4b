"""Twelve Data client against a loopback stub: shape changes, errors inside HTTP 200, credits."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from prices.providers.base import (
    PermanentError,
    QuotaExhaustedError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.twelvedata import TwelveDataProvider
from tests.stubs import StubServer, html_response, json_response, text_response

KEY = "td-key-123"
CLOCK = datetime(2024, 3, 25, 14, 30, 45, 500000, tzinfo=UTC)

AAPL = (
    '{"symbol":"AAPL","name":"Apple Inc","exchange":"NASDAQ","mic_code":"XNGS","currency":"USD",'
    '"datetime":"2024-03-22","timestamp":1711114200,"last_quote_at":1711137600,'
    '"open":"171.75999","high":"173.05000","low":"170.06000","close":"172.28000",'
    '"volume":"71106600","previous_close":"171.37000","change":"0.91000",'
    '"percent_change":"0.53102","average_volume":"61355550","is_market_open":false}'
)
MSFT = (
    '{"symbol":"MSFT","name":"Microsoft Corp","exchange":"NASDAQ","mic_code":"XNGS",'
    '"currency":"USD","datetime":"2024-03-22","timestamp":1711114200,"last_quote_at":1711137600,'
    '"open":"429.70001","high":"429.85999","low":"426.07001","close":"428.73999",'
    '"volume":"17636500","previous_close":"429.37000","is_market_open":false}'
)
NOT_FOUND = (
    '{"code":400,"message":"**symbol** not found: ZZZZ. Please specify it correctly according '
    'to API Documentation.","status":"error","meta":{"symbol":"ZZZZ","interval":"","exchange":""}}'
)
MINUTE_CREDITS = (
    '{"code":429,"message":"You have run out of API credits for the current minute. 9 API '
    "credits were used, with the current limit being 8. Wait for the next minute or consider "
    'switching to a higher tier plan at https://twelvedata.com/pricing","status":"error"}'
)
DAY_CREDITS = (
    '{"code":429,"message":"You have run out of API credits for the day. 801 API credits were '
    'used, with the current limit being 800.","status":"error"}'
)
BAD_KEY = (
    '{"code":401,"message":"**apikey** parameter is incorrect or not specified. You can get your '
    'free API key instantly following this link: https://twelvedata.com/pricing.",'
    '"status":"error"}'
)
PRO_ONLY = (
    '{"code":403,"message":"**symbol** VOD:LSE is available exclusively with pro or enterprise '
    'plans. Consider upgrading your API Key now at https://twelvedata.com/pricing",'
    '"status":"error"}'
)
SERIES = """{"meta":{"symbol":"AAPL","interval":"1day","currency":"USD",
 "exchange_timezone":"America/New_York","exchange":"NASDAQ","mic_code":"XNGS",
 "type":"Common Stock"},
 "values":[
  {"datetime":"2023-07-06","open":"189.84000","high":"192.02000","low":"189.20000","close":"191.81000","volume":"45094300"},
  {"datetime":"2023-07-05","open":"191.57001","high":"192.98000","low":"190.62000","close":"191.33000","volume":"46920300"},
  {"datetime":"2023-07-03","open":"193.78000","high":"193.88000","low":"191.76250","close":"192.46001","volume":"30907450"},
  {"datetime":"2023-06-30","open":"191.63000","high":"194.48000","low":"191.26000","close":"193.97000","volume":"85069600"}],
 "status":"ok"}"""


@pytest.fixture
def provider(stub: StubServer) -> TwelveDataProvider:
    return TwelveDataProvider(base_url=stub.url, api_key=KEY, timeout=1, clock=lambda: CLOCK)


def test_free_tier_limits():
    assert TwelveDataProvider.max_symbols_per_request == 8
    assert TwelveDataProvider.requests_per_second == pytest.approx(8 / 60)
    assert TwelveDataProvider.daily_quota == 800


def test_one_symbol_comes_unwrapped(stub, provider):
    stub.route("/quote", json_response(AAPL))

    batch = provider.latest_quotes(["AAPL"])

    quote = batch.quotes["AAPL"]
    assert quote.price == Decimal("172.28000")
    assert quote.previous_close == Decimal("171.37000")
    assert quote.as_of == datetime(2024, 3, 22, 20, 0, tzinfo=UTC)  # last_quote_at
    assert quote.currency == "USD"
    assert batch.unknown == set()
    (request,) = stub.requests_to("/quote")
    assert request.param("symbol") == "AAPL"
    assert request.param("apikey") == KEY


def test_several_symbols_come_keyed_by_symbol_with_per_symbol_errors(stub, provider):
    body = (
        f'{{"AAPL":{AAPL},"MSFT":{MSFT},"ZZZZ":{NOT_FOUND},'
        f'"GOOG":{AAPL.replace("AAPL", "GOOG")}}}'  # not asked for: ignored
    )
    stub.route("/quote", json_response(body))

    batch = provider.latest_quotes(["AAPL", "MSFT", "ZZZZ"])

    assert {s: q.price for s, q in batch.quotes.items()} == {
        "AAPL": Decimal("172.28000"),
        "MSFT": Decimal("428.73999"),
    }
    assert batch.unknown == {"ZZZZ"}
    assert stub.requests_to("/quote")[0].param("symbol") == "AAPL,MSFT,ZZZZ"


def test_a_single_unknown_symbol_is_unknown_not_an_exception(stub, provider):
    stub.route("/quote", json_response(NOT_FOUND))
    batch = provider.latest_quotes(["ZZZZ"])
    assert batch.quotes == {} and batch.unknown == {"ZZZZ"}


def test_a_single_symbol_in_the_batch_shape_is_accepted(stub, provider):
    stub.route("/quote", json_response(f'{{"AAPL":{AAPL}}}'))
    assert provider.latest_quotes(["AAPL"]).quotes["AAPL"].price == Decimal("172.28000")


def test_timestamp_is_the_fallback_when_last_quote_at_is_absent(stub, provider):
    stub.route("/quote", json_response(AAPL.replace('"last_quote_at":1711137600,', "")))
    quote = provider.latest_quotes(["AAPL"]).quotes["AAPL"]
    assert quote.as_of == datetime(2024, 3, 22, 13, 30, tzinfo=UTC)


def test_a_batch_symbol_beyond_the_plan_is_unknown_but_alone_it_is_permanent(stub, provider):
    stub.route("/quote", json_response(f'{{"AAPL":{AAPL},"VOD:LSE":{PRO_ONLY}}}'))
    batch = provider.latest_quotes(["AAPL", "VOD:LSE"])
    assert set(batch.quotes) == {"AAPL"} and batch.unknown == {"VOD:LSE"}

    stub.route("/quote", json_response(PRO_ONLY))
    with pytest.raises(PermanentError):
        provider.latest_quotes(["VOD:LSE"])


@pytest.mark.parametrize("status", [200, 429])
def test_running_out_of_minute_credits_waits_for_the_next_minute(stub, provider, status):
    # whether the error arrives with HTTP 200 (as Twelve Data often does) or 429
    stub.route("/quote", json_response(MINUTE_CREDITS, status=status))
    with pytest.raises(RateLimitedError) as raised:
        provider.latest_quotes(["AAPL", "MSFT"])
    assert raised.value.retry_after == pytest.approx(14.5)  # from 14:30:45.5 to 14:31:00


def test_a_retry_after_header_wins_over_the_minute_boundary(stub, provider):
    stub.route("/quote", json_response(MINUTE_CREDITS, status=429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimitedError) as raised:
        provider.latest_quotes(["AAPL"])
    assert raised.value.retry_after == 7.0


def test_a_non_json_429_is_rate_limited(stub, provider):
    stub.route("/quote", text_response("Too Many Requests", status=429))
    with pytest.raises(RateLimitedError) as raised:
        provider.latest_quotes(["AAPL"])
    assert raised.value.retry_after is None


def test_a_per_symbol_credit_error_stops_the_whole_batch(stub, provider):
    stub.route("/quote", json_response(f'{{"AAPL":{AAPL},"MSFT":{MINUTE_CREDITS}}}'))
    with pytest.raises(RateLimitedError):
        provider.latest_quotes(["AAPL", "MSFT"])


def test_running_out_of_daily_credits_is_quota_exhausted(stub, provider):
    stub.route("/quote", json_response(DAY_CREDITS))
    with pytest.raises(QuotaExhaustedError):
        provider.latest_quotes(["AAPL", "MSFT"])


@pytest.mark.parametrize("symbols", [["AAPL"], ["AAPL", "MSFT"]])
def test_a_bad_key_is_permanent_and_never_shown(stub, provider, symbols):
    stub.route("/quote", json_response(BAD_KEY))
    with pytest.raises(PermanentError) as raised:
        provider.latest_quotes(symbols)
    assert not isinstance(raised.value, UnknownSymbolError)
    assert KEY not in str(raised.value)


def test_a_bad_key_with_http_401_is_permanent(stub, provider):
    stub.route("/quote", json_response(BAD_KEY, status=401))
    with pytest.raises(PermanentError):
        provider.latest_quotes(["AAPL"])


@pytest.mark.parametrize(
    "response",
    [
        html_response(),
        json_response('{"AAPL":{"symbol":"AAPL","close":"172.2'),
        text_response("Bad gateway", status=502),
        json_response('{"code":500,"message":"Internal error","status":"error"}'),
        json_response(AAPL, delay=1.0),
    ],
)
def test_garbage_slow_and_failing_answers_are_transient(stub, response):
    stub.route("/quote", response)
    provider = TwelveDataProvider(base_url=stub.url, api_key=KEY, timeout=0.2)
    with pytest.raises(TransientError):
        provider.latest_quotes(["AAPL", "MSFT"])


def test_unusable_prices_are_never_returned(stub, provider):
    zero = AAPL.replace('"close":"172.28000"', '"close":"0.00000"')
    null = MSFT.replace('"close":"428.73999"', '"close":null')
    body = f'{{"AAPL":{zero},"MSFT":{null}}}'
    stub.route("/quote", json_response(body))
    batch = provider.latest_quotes(["AAPL", "MSFT"])
    assert batch.quotes == {} and batch.unknown == set()


def test_a_paid_plan_batch_goes_in_one_request_up_to_the_documented_maximum(stub, provider):
    # TWELVEDATA_BATCH_SIZE=50 (a paid plan): 50 symbols, one request, every one priced
    symbols = [f"S{i}" for i in range(50)]
    stub.route("/quote", json_response("{" + ",".join(
        f'"{s}":' + AAPL.replace('"AAPL"', f'"{s}"') for s in symbols) + "}"))
    batch = provider.latest_quotes(symbols)
    assert len(stub.requests) == 1 and sorted(batch.quotes) == sorted(symbols)
    assert batch.quotes["S49"].price == Decimal("172.28000")


def test_more_than_its_documented_maximum_is_a_caller_error(stub, provider):
    assert TwelveDataProvider.batch_size_ceiling() == 120
    with pytest.raises(ValueError, match="121 symbols in one request, at most 120"):
        provider.latest_quotes([f"S{i}" for i in range(121)])
    assert stub.requests == []


def test_daily_history_is_oldest_first_and_exact(stub, provider):
    stub.route("/time_series", json_response(SERIES))

    bars = provider.daily_history("AAPL", date(2023, 7, 3), date(2023, 7, 5))

    assert [(b.date, b.close) for b in bars] == [
        (date(2023, 7, 3), Decimal("192.46001")),
        (date(2023, 7, 5), Decimal("191.33000")),
    ]
    (request,) = stub.requests_to("/time_series")
    assert request.param("symbol") == "AAPL"
    assert request.param("interval") == "1day"
    assert request.param("start_date") == "2023-07-03"
    assert request.param("end_date") == "2023-07-06"  # a day past the end, trimmed locally
    assert request.param("outputsize") == "5000"
    assert request.param("adjust") == "none"  # closes as traded, not split-adjusted
    assert request.param("apikey") == KEY


@pytest.mark.parametrize(("kind", "asset_class"), [("Common Stock", "stock"), ("ETF", "etf"),
                                                    ("Digital Currency", "crypto"), ("Warrant", None)])
def test_daily_history_says_the_currency_and_type_of_the_series(stub, provider, kind, asset_class):
    stub.route("/time_series", json_response(SERIES.replace('"Common Stock"', f'"{kind}"')))

    bars = provider.daily_history("AAPL", date(2023, 7, 3), date(2023, 7, 5))

    assert (bars.currency, bars.asset_class, len(bars)) == ("USD", asset_class, 2)


# NVDA around its 10-for-1 split of 10 June 2024, as /time_series sends it with adjust=none: the
# close of the 7th is the pre-split price (with the default adjust=splits it would be 120.88800).
NVDA_UNADJUSTED = """{"meta":{"symbol":"NVDA","interval":"1day","currency":"USD",
 "exchange_timezone":"America/New_York","exchange":"NASDAQ","mic_code":"XNGS","type":"Common Stock"},
 "values":[
  {"datetime":"2024-06-11","open":"121.77000","high":"122.87000","low":"118.74000","close":"120.91000","volume":"222551200"},
  {"datetime":"2024-06-10","open":"120.37000","high":"123.10000","low":"117.01000","close":"121.79000","volume":"314162700"},
  {"datetime":"2024-06-07","open":"1197.70000","high":"1216.91700","low":"1180.22000","close":"1208.88000","volume":"41238580"}],
 "status":"ok"}"""


def test_history_across_a_split_is_asked_unadjusted_and_kept_as_sent(stub, provider):
    # Given Twelve Data answering the unadjusted series that `adjust=none` asks for
    stub.route("/time_series", json_response(NVDA_UNADJUSTED))

    # When the days around the split are asked
    bars = provider.daily_history("NVDA", date(2024, 6, 7), date(2024, 6, 11))

    # Then the request asked for no adjustment, and each close is the day's traded price
    assert stub.requests_to("/time_series")[0].param("adjust") == "none"
    assert [(b.date, b.close, b.adjusted_close) for b in bars] == [
        (date(2024, 6, 7), Decimal("1208.88000"), None),
        (date(2024, 6, 10), Decimal("121.79000"), None),
        (date(2024, 6, 11), Decimal("120.91000"), None),
    ]


def test_history_of_an_unknown_symbol_is_unknown(stub, provider):
    stub.route("/time_series", json_response(NOT_FOUND))
    with pytest.raises(UnknownSymbolError) as raised:
        provider.daily_history("ZZZZ", date(2023, 7, 3), date(2023, 7, 5))
    assert raised.value.symbol == "ZZZZ"


def test_history_without_data_in_the_range_is_empty(stub, provider):
    stub.route(
        "/time_series",
        json_response(
            '{"code":400,"message":"No data is available on the specified dates. Try setting '
            'different start/end dates.","status":"error","meta":{"symbol":"AAPL"}}'
        ),
    )
    assert provider.daily_history("AAPL", date(2023, 7, 1), date(2023, 7, 2)) == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (MINUTE_CREDITS, RateLimitedError),
        (DAY_CREDITS, QuotaExhaustedError),
        (BAD_KEY, PermanentError),
        ('{"meta":{"symbol":"AAPL"},"status":"ok"}', TransientError),
    ],
)
def test_history_errors_map_to_the_taxonomy(stub, provider, body, error):
    stub.route("/time_series", json_response(body))
    with pytest.raises(error) as raised:
        provider.daily_history("AAPL", date(2023, 7, 3), date(2023, 7, 5))
    assert not isinstance(raised.value, UnknownSymbolError)


def test_no_key_means_no_apikey_param(stub):
    stub.route("/quote", json_response(AAPL))
    TwelveDataProvider(base_url=stub.url, api_key="", timeout=1).latest_quotes(["AAPL"])
    assert stub.requests_to("/quote")[0].param("apikey") is None
