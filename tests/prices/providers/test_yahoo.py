"""Yahoo Finance client against a loopback stub speaking Yahoo's wire format."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from prices.providers.base import (
    PermanentError,
    RateLimitedError,
    TransientError,
    UnknownSymbolError,
)
from prices.providers.yahoo import YahooProvider
from tests.stubs import StubServer, html_response, json_response, text_response

CRUMB = "Xy1aB2c3D4e"
NOW = datetime(2026, 7, 1, 20, 0, tzinfo=UTC)  # the client's clock: charts reach up to it
QUOTE_PATH = "/v7/finance/quote"
CRUMB_PATH = "/v1/test/getcrumb"

QUOTES = """{"quoteResponse":{"result":[
 {"symbol":"AAPL","currency":"USD","marketState":"REGULAR","exchangeTimezoneName":"America/New_York",
  "regularMarketPrice":333.7,"regularMarketChange":0.01,"regularMarketPreviousClose":333.69,
  "regularMarketTime":1635969603},
 {"symbol":"VOD.L","currency":"GBp","marketState":"CLOSED","exchangeTimezoneName":"Europe/London",
  "regularMarketPrice":72.41,"regularMarketChange":-0.3,"regularMarketPreviousClose":72.71,
  "regularMarketTime":1635955200}],"error":null}}"""

INVALID_CRUMB = (
    '{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}'
)

CHART = """{"chart":{"result":[{"meta":{"currency":"USD","symbol":"SPY","exchangeName":"PCX",
 "instrumentType":"ETF","regularMarketTime":1771621200,"gmtoffset":-18000,"timezone":"EST",
 "exchangeTimezoneName":"America/New_York","regularMarketPrice":689.43,"chartPreviousClose":681.75,
 "priceHint":2,"dataGranularity":"1d"},
 "timestamp":[1770993000,1771338600,1771425000,1771511400],
 "indicators":{"quote":[{"open":[681.69,680.14,684.0,686.1],"close":[681.75,null,685.12,687.3],
   "high":[686.28,684.94,686.0,688.0],"volume":[96267500,null,80000000,70000000],
   "low":[677.52,675.78,682.1,684.9]}],
  "adjclose":[{"adjclose":[679.81,null,683.17,null]}]}}],"error":null}}"""

NOT_FOUND = (
    '{"chart":{"result":null,"error":{"code":"Not Found",'
    '"description":"No data found, symbol may be delisted"}}}'
)


@pytest.fixture
def yahoo(stub: StubServer) -> YahooProvider:
    # like fc.yahoo.com: a 404 that sets the cookie the crumb is bound to
    cookie = text_response("", status=404, headers={"Set-Cookie": "A3=d=AQAB; Path=/"})
    stub.route("/cookie", cookie)
    stub.route(CRUMB_PATH, text_response(CRUMB))
    return YahooProvider(base_url=stub.url, timeout=1, cookie_url=f"{stub.url}/cookie", clock=lambda: NOW)


def test_latest_quotes_prices_known_symbols_and_reports_absent_ones(stub, yahoo):
    stub.route(QUOTE_PATH, json_response(QUOTES))

    batch = yahoo.latest_quotes(["AAPL", "VOD.L", "ZZZZ"])

    aapl = batch.quotes["AAPL"]
    assert aapl.price == Decimal("333.7")
    assert aapl.previous_close == Decimal("333.69")
    assert aapl.as_of == datetime(2021, 11, 3, 20, 0, 3, tzinfo=UTC)
    assert aapl.currency == "USD"
    assert batch.quotes["VOD.L"].price == Decimal("72.41")
    assert batch.quotes["VOD.L"].currency == "GBp"  # pence, passed through as Yahoo says it
    assert batch.unknown == {"ZZZZ"}
    # the request carried the batch, the crumb and the cookie the crumb is bound to
    (request,) = stub.requests_to(QUOTE_PATH)
    assert request.param("symbols") == "AAPL,VOD.L,ZZZZ"
    assert request.param("crumb") == CRUMB
    assert "A3=d=AQAB" in request.headers["cookie"]
    assert request.headers["user-agent"].startswith("Mozilla/5.0")
    assert "A3=d=AQAB" in stub.requests_to(CRUMB_PATH)[0].headers["cookie"]


def test_quotes_say_what_the_instrument_is_when_yahoo_names_its_type(stub, yahoo):
    typed = QUOTES.replace('"symbol":"AAPL",', '"symbol":"AAPL","quoteType":"EQUITY",').replace(
        '"symbol":"VOD.L",', '"symbol":"VOD.L","quoteType":"SOMETHING NEW",')
    stub.route(QUOTE_PATH, json_response(typed))

    batch = yahoo.latest_quotes(["AAPL", "VOD.L"])

    assert (batch.quotes["AAPL"].currency, batch.quotes["AAPL"].asset_class) == ("USD", "stock")
    assert (batch.quotes["VOD.L"].currency, batch.quotes["VOD.L"].asset_class) == ("GBp", None)  # unmapped type


def test_symbols_are_matched_case_insensitively_and_returned_as_asked(stub, yahoo):
    stub.route(QUOTE_PATH, json_response(QUOTES))
    batch = yahoo.latest_quotes(["aapl", "vod.l"])
    assert set(batch.quotes) == {"aapl", "vod.l"}
    assert batch.quotes["aapl"].symbol == "aapl"
    assert batch.unknown == set()


def test_the_crumb_is_fetched_once_and_cached(stub, yahoo):
    stub.route(QUOTE_PATH, json_response(QUOTES))
    yahoo.latest_quotes(["AAPL"])
    yahoo.latest_quotes(["VOD.L"])
    assert len(stub.requests_to(CRUMB_PATH)) == 1
    assert len(stub.requests_to("/cookie")) == 1
    assert [r.param("crumb") for r in stub.requests_to(QUOTE_PATH)] == [CRUMB, CRUMB]


def test_an_invalid_crumb_is_refreshed_once_and_the_request_retried(stub, yahoo):
    stub.route(CRUMB_PATH, text_response("oldCrumb"), text_response("newCrumb"))
    stub.route(QUOTE_PATH, json_response(INVALID_CRUMB, status=401), json_response(QUOTES))

    batch = yahoo.latest_quotes(["AAPL"])

    assert batch.quotes["AAPL"].price == Decimal("333.7")
    assert [r.param("crumb") for r in stub.requests_to(QUOTE_PATH)] == ["oldCrumb", "newCrumb"]
    assert len(stub.requests_to("/cookie")) == 2  # a new cookie for the new crumb
    # and the fresh crumb is the one cached afterwards
    yahoo.latest_quotes(["AAPL"])
    assert stub.requests_to(QUOTE_PATH)[-1].param("crumb") == "newCrumb"
    assert len(stub.requests_to(CRUMB_PATH)) == 2


def test_a_crumb_rejected_twice_is_transient_without_a_retry_loop(stub, yahoo):
    stub.route(QUOTE_PATH, json_response(INVALID_CRUMB, status=401))
    with pytest.raises(TransientError, match="crumb"):
        yahoo.latest_quotes(["AAPL"])
    assert len(stub.requests_to(QUOTE_PATH)) == 2
    assert len(stub.requests_to(CRUMB_PATH)) == 2


def test_a_getcrumb_answer_that_is_no_crumb_is_transient(stub):
    stub.route(CRUMB_PATH, html_response())
    provider = YahooProvider(base_url=stub.url, timeout=1)  # no cookie URL behind a stub/proxy
    with pytest.raises(TransientError):
        provider.latest_quotes(["AAPL"])
    assert stub.requests_to(QUOTE_PATH) == []


@pytest.mark.parametrize(
    ("headers", "retry_after"), [({}, None), ({"Retry-After": "30"}, 30.0)]
)
def test_edge_too_many_requests_is_rate_limited(stub, yahoo, headers, retry_after):
    stub.route(QUOTE_PATH, text_response("Edge: Too Many Requests", status=429, headers=headers))
    with pytest.raises(RateLimitedError) as raised:
        yahoo.latest_quotes(["AAPL"])
    assert raised.value.retry_after == retry_after
    assert len(stub.requests_to(QUOTE_PATH)) == 1  # no retry inside the client


def test_a_rate_limited_getcrumb_is_rate_limited(stub):
    stub.route(
        CRUMB_PATH, text_response("Too Many Requests", status=429, headers={"Retry-After": "5"})
    )
    provider = YahooProvider(base_url=stub.url, timeout=1)
    with pytest.raises(RateLimitedError) as raised:
        provider.latest_quotes(["AAPL"])
    assert raised.value.retry_after == 5.0


@pytest.mark.parametrize(
    "response",
    [
        text_response("upstream error", status=503),
        html_response(),
        json_response('{"quoteResponse":{"result":[{"symbol":"AAPL","regularMarketPr'),
        json_response('{"finance":{"result":null,"error":null}}'),
    ],
)
def test_garbage_quote_answers_are_transient(stub, yahoo, response):
    stub.route(QUOTE_PATH, response)
    with pytest.raises(TransientError):
        yahoo.latest_quotes(["AAPL"])


def test_a_slow_quote_answer_times_out(stub):
    stub.route(CRUMB_PATH, text_response(CRUMB))
    stub.route(QUOTE_PATH, json_response(QUOTES, delay=1.0))
    provider = YahooProvider(base_url=stub.url, timeout=0.2)
    with pytest.raises(TransientError):
        provider.latest_quotes(["AAPL"])


def test_quotes_are_cut_to_the_price_hint_so_float_noise_never_reaches_a_cent(stub, yahoo):
    stub.route(QUOTE_PATH, json_response(
        '{"quoteResponse":{"result":[{"symbol":"AAPL","currency":"USD","priceHint":2,'
        '"regularMarketPrice":183.7899932861328,"regularMarketPreviousClose":182.5050048828125,'
        '"regularMarketTime":1635969603},{"symbol":"SIRI","currency":"USD","priceHint":4,'
        '"regularMarketPrice":0.123449999,"regularMarketTime":1635969603}],"error":null}}'))
    batch = yahoo.latest_quotes(["AAPL", "SIRI"])
    assert (str(batch.quotes["AAPL"].price), str(batch.quotes["AAPL"].previous_close)) == ("183.79", "182.51")
    assert str(batch.quotes["SIRI"].price) == "0.1234"


@pytest.mark.parametrize("price", ["null", "0", "-3.5", '"n/a"'])
def test_a_known_symbol_without_a_usable_price_is_neither_priced_nor_unknown(stub, yahoo, price):
    stub.route(
        QUOTE_PATH,
        json_response(
            '{"quoteResponse":{"result":[{"symbol":"AAPL","currency":"USD",'
            f'"regularMarketPrice":{price},"regularMarketTime":1635969603}}],"error":null}}}}'
        ),
    )
    batch = yahoo.latest_quotes(["AAPL"])
    assert batch.quotes == {}
    assert batch.unknown == set()


def test_an_empty_result_marks_every_symbol_unknown(stub, yahoo):
    stub.route(QUOTE_PATH, json_response('{"quoteResponse":{"result":[],"error":null}}'))
    batch = yahoo.latest_quotes(["ZZZZ", "ZZZY"])
    assert batch.quotes == {} and batch.unknown == {"ZZZZ", "ZZZY"}


def test_more_than_fifty_symbols_is_a_caller_error(stub, yahoo):
    with pytest.raises(ValueError):
        yahoo.latest_quotes([f"S{i}" for i in range(51)])
    assert stub.requests == []


def test_daily_history_skips_nulls_and_dates_bars_in_the_exchange_zone(stub, yahoo):
    stub.route("/v8/finance/chart/SPY", json_response(CHART))

    bars = yahoo.daily_history("SPY", date(2026, 2, 13), date(2026, 2, 19))

    assert [(b.date, b.close, b.adjusted_close) for b in bars] == [
        (date(2026, 2, 13), Decimal("681.75"), Decimal("679.81")),
        # 2026-02-17 has a null close: skipped, never a zero
        (date(2026, 2, 18), Decimal("685.12"), Decimal("683.17")),
        (date(2026, 2, 19), Decimal("687.3"), None),  # close without adjclose
    ]
    (request,) = stub.requests_to("/v8/finance/chart/SPY")
    # a day of margin on each side, for exchanges whose session opens on the previous UTC day
    assert request.param("period1") == str(int(datetime(2026, 2, 12, tzinfo=UTC).timestamp()))
    # up to now, so that the split events after the range are in the answer too
    assert request.param("period2") == str(int(NOW.timestamp()))
    assert request.param("interval") == "1d"
    assert request.param("events") == "div,splits"
    assert stub.requests_to(CRUMB_PATH) == []  # the chart endpoint needs no crumb


@pytest.mark.parametrize(("kind", "asset_class"), [("ETF", "etf"), ("EQUITY", "stock"), ("MUTUALFUND", "fund"),
                                                    ("CRYPTOCURRENCY", "crypto"), ("INDEX", "other"), ("WHAT", None)])
def test_daily_history_says_the_currency_and_type_of_the_chart(stub, yahoo, kind, asset_class):
    stub.route("/v8/finance/chart/SPY", json_response(CHART.replace('"ETF"', f'"{kind}"').replace('"USD"', '"GBp"')))

    bars = yahoo.daily_history("SPY", date(2026, 2, 13), date(2026, 2, 19))

    assert (bars.currency, bars.asset_class, len(bars)) == ("GBp", asset_class, 3)


def test_daily_history_keeps_only_the_asked_range(stub, yahoo):
    stub.route("/v8/finance/chart/SPY", json_response(CHART))
    bars = yahoo.daily_history("SPY", date(2026, 2, 14), date(2026, 2, 18))
    assert [b.date for b in bars] == [date(2026, 2, 18)]


def test_history_dates_follow_the_exchange_zone_not_utc(stub, yahoo):
    # Sydney opens at 10:00 AEDT = 23:00 UTC the previous day
    body = (
        '{"chart":{"result":[{"meta":{"currency":"AUD","symbol":"CBA.AX","gmtoffset":39600,'
        '"exchangeTimezoneName":"Australia/Sydney"},"timestamp":[1771196400],'
        '"indicators":{"quote":[{"close":[171.2]}],"adjclose":[{"adjclose":[170.05]}]}}],'
        '"error":null}}'
    )
    stub.route("/v8/finance/chart/CBA.AX", json_response(body))
    bars = yahoo.daily_history("CBA.AX", date(2026, 2, 16), date(2026, 2, 16))
    assert [(b.date, b.close) for b in bars] == [(date(2026, 2, 16), Decimal("171.2"))]


def test_history_falls_back_to_gmtoffset_without_a_known_zone_name(stub, yahoo):
    body = (
        '{"chart":{"result":[{"meta":{"gmtoffset":39600,"exchangeTimezoneName":"Not/AZone"},'
        '"timestamp":[1771196400],"indicators":{"quote":[{"close":[171.2]}]}}],"error":null}}'
    )
    stub.route("/v8/finance/chart/CBA.AX", json_response(body))
    bars = yahoo.daily_history("CBA.AX", date(2026, 2, 15), date(2026, 2, 16))
    assert [(b.date, b.adjusted_close) for b in bars] == [(date(2026, 2, 16), None)]


def test_a_repeated_date_keeps_the_later_bar(stub, yahoo):
    body = (
        '{"chart":{"result":[{"meta":{"exchangeTimezoneName":"America/New_York"},'
        '"timestamp":[1771338600,1771355000],"indicators":{"quote":[{"close":[684.1,686.9]}]}}],'
        '"error":null}}'
    )
    stub.route("/v8/finance/chart/SPY", json_response(body))
    bars = yahoo.daily_history("SPY", date(2026, 2, 17), date(2026, 2, 17))
    assert [(b.date, b.close) for b in bars] == [(date(2026, 2, 17), Decimal("686.9"))]


def test_a_range_without_bars_is_empty_not_an_error(stub, yahoo):
    body = (
        '{"chart":{"result":[{"meta":{"exchangeTimezoneName":"America/New_York"},'
        '"indicators":{"quote":[{}],"adjclose":[{}]}}],"error":null}}'
    )
    stub.route("/v8/finance/chart/SPY", json_response(body))
    assert yahoo.daily_history("SPY", date(2026, 2, 14), date(2026, 2, 15)) == []


def test_misaligned_arrays_are_transient(stub, yahoo):
    body = (
        '{"chart":{"result":[{"meta":{},"timestamp":[1770993000,1771338600],'
        '"indicators":{"quote":[{"close":[681.75]}]}}],"error":null}}'
    )
    stub.route("/v8/finance/chart/SPY", json_response(body))
    with pytest.raises(TransientError):
        yahoo.daily_history("SPY", date(2026, 2, 13), date(2026, 2, 17))


def test_an_unknown_symbol_is_unknown(stub, yahoo):
    stub.route("/v8/finance/chart/ZZZZ", json_response(NOT_FOUND, status=404))
    with pytest.raises(UnknownSymbolError) as raised:
        yahoo.daily_history("ZZZZ", date(2026, 2, 13), date(2026, 2, 17))
    assert raised.value.symbol == "ZZZZ"
    assert "delisted" in str(raised.value)


def test_symbols_are_escaped_in_the_chart_path(stub, yahoo):
    stub.route("/v8/finance/chart/^GSPC", json_response(NOT_FOUND, status=404))
    with pytest.raises(UnknownSymbolError):
        yahoo.daily_history("^GSPC", date(2026, 2, 13), date(2026, 2, 17))
    assert stub.requests_to("/v8/finance/chart/^GSPC")[0].raw_path.startswith(
        "/v8/finance/chart/%5EGSPC?"
    )


def test_other_chart_errors_are_permanent(stub, yahoo):
    body = (
        '{"chart":{"result":null,"error":{"code":"Bad Request",'
        '"description":"Invalid input - start date cannot be after end date"}}}'
    )
    stub.route("/v8/finance/chart/SPY", json_response(body, status=400))
    with pytest.raises(PermanentError) as raised:
        yahoo.daily_history("SPY", date(2026, 2, 13), date(2026, 2, 17))
    assert not isinstance(raised.value, UnknownSymbolError)


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (text_response("Edge: Too Many Requests", status=429), RateLimitedError),
        (text_response("Internal error", status=500), TransientError),
        (html_response(), TransientError),
        (html_response(status=404), TransientError),  # a 404 page, not Yahoo's JSON answer
        (json_response(CHART[:150]), TransientError),
        (json_response(CHART, delay=1.0), TransientError),
    ],
)
def test_history_failures_map_to_the_taxonomy(stub, response, error):
    stub.route("/v8/finance/chart/SPY", response)
    provider = YahooProvider(base_url=stub.url, timeout=0.2)
    with pytest.raises(error):
        provider.daily_history("SPY", date(2026, 2, 13), date(2026, 2, 17))
    assert len(stub.requests_to("/v8/finance/chart/SPY")) == 1


# --- splits: the chart's closes are split-adjusted up to now; history is what each day traded at

NEW_YORK = ZoneInfo("America/New_York")

# AAPL around a 2:1 split whose first post-split session is Wed 10 June 2026, asked on 1 July:
# closes before the 10th are in post-split terms (halved), float noise included, as Yahoo sends them.
SPLIT_CHART = """{"chart":{"result":[{"meta":{"currency":"USD","symbol":"AAPL","exchangeName":"NMS",
 "instrumentType":"EQUITY","regularMarketTime":1782936000,"gmtoffset":-14400,"timezone":"EDT",
 "exchangeTimezoneName":"America/New_York","regularMarketPrice":531.2,"priceHint":2,
 "dataGranularity":"1d"},
 "timestamp":[1780925400,1781011800,1781098200,1781184600],
 "events":{"splits":{"1781098200":{"date":1781098200,"numerator":2,"denominator":1,"splitRatio":"2:1"}}},
 "indicators":{"quote":[{"open":[524.1,525.0,526.3,527.0],
   "close":[525.2550048828125,526.0,527.0999755859375,528.0],
   "high":[526.0,527.0,528.0,529.0],"low":[523.0,524.0,525.0,526.0],
   "volume":[61000000,58000000,90000000,70000000]}],
  "adjclose":[{"adjclose":[524.0,524.75,527.0999755859375,528.0]}]}}],"error":null}}"""


def chart(bars: list[tuple[date, str]], splits: list[tuple[date, object, object]] = ()) -> str:
    """A v8 chart of a New York listing in Yahoo's wire format: `bars` are (session, close as sent),
    `splits` (ex-date, numerator, denominator), each stamped at its session's 09:30 open."""

    def stamp(day: date) -> int:
        return int(datetime(day.year, day.month, day.day, 9, 30, tzinfo=NEW_YORK).timestamp())

    events = {
        str(stamp(day)): {"date": stamp(day), "numerator": numerator, "denominator": denominator,
                          "splitRatio": f"{numerator}:{denominator}"}
        for day, numerator, denominator in splits
    }
    closes = ",".join(close for _, close in bars)  # as text: the digits go on the wire exactly
    return (
        '{"chart":{"result":[{"meta":{"currency":"USD","symbol":"AAPL",'
        '"exchangeTimezoneName":"America/New_York","gmtoffset":-14400},'
        f'"timestamp":{json.dumps([stamp(day) for day, _ in bars])},'
        + (f'"events":{{"splits":{json.dumps(events)}}},' if events else "")
        + f'"indicators":{{"quote":[{{"close":[{closes}]}}],"adjclose":[{{"adjclose":[{closes}]}}]}}}}],'
        '"error":null}}'
    )


def closes(bars) -> list[tuple[date, Decimal]]:
    return [(bar.date, bar.close) for bar in bars]


def test_closes_before_a_split_in_the_range_are_unadjusted_and_the_split_day_is_not(stub, yahoo):
    # Given a chart whose closes before the 2:1 split of 10 June are halved
    stub.route("/v8/finance/chart/AAPL", json_response(SPLIT_CHART))

    # When the history across the split is asked
    bars = yahoo.daily_history("AAPL", date(2026, 6, 8), date(2026, 6, 11))

    # Then each close is what the day traded at: doubled before the split, as sent from its ex-date
    # on (the 10th is already a post-split price), rounded half up to the chart's priceHint (2)
    assert [(b.date, str(b.close)) for b in bars] == [
        (date(2026, 6, 8), "1050.51"),  # 525.2550048828125 × 2: Yahoo's float noise cut at the hint
        (date(2026, 6, 9), "1052.00"),
        (date(2026, 6, 10), "527.10"),  # 527.0999755859375
        (date(2026, 6, 11), "528.00"),
    ]
    # and the provider's split- and dividend-adjusted close is passed on untouched
    assert [b.adjusted_close for b in bars] == [
        Decimal("524.0"), Decimal("524.75"), Decimal("527.0999755859375"), Decimal("528.0")
    ]
    (request,) = stub.requests_to("/v8/finance/chart/AAPL")
    assert request.param("events") == "div,splits"


def test_a_split_after_the_range_is_learnt_from_a_window_reaching_now(stub, yahoo):
    # Given a split on 10 June, after the asked week: only a window up to now lists it
    body = chart(
        [(date(2026, 6, d), "100.5") for d in (1, 2, 3, 4, 5, 8, 9, 10, 11)],
        splits=[(date(2026, 6, 10), 2, 1)],
    )
    stub.route("/v8/finance/chart/AAPL", json_response(body))

    # When the week of 1 June is asked
    bars = yahoo.daily_history("AAPL", date(2026, 6, 1), date(2026, 6, 5))

    # Then the request reached the present, the week is un-adjusted and the later bars are dropped
    (request,) = stub.requests_to("/v8/finance/chart/AAPL")
    assert request.param("period1") == str(int(datetime(2026, 5, 31, tzinfo=UTC).timestamp()))
    assert request.param("period2") == str(int(NOW.timestamp()))
    assert closes(bars) == [(date(2026, 6, d), Decimal("201")) for d in (1, 2, 3, 4, 5)]


@pytest.mark.parametrize(
    ("clock", "period2"),
    [
        # a range ending well before now: the window reaches now
        (datetime(2026, 7, 1, 20, 0, tzinfo=UTC), datetime(2026, 7, 1, 20, 0, tzinfo=UTC)),
        # a range ending yesterday: the two days of margin past `end` already reach beyond now
        (datetime(2026, 6, 12, 20, 0, tzinfo=UTC), datetime(2026, 6, 13, tzinfo=UTC)),
    ],
)
def test_the_chart_window_ends_at_now_or_two_days_past_the_range(stub, clock, period2):
    stub.route("/v8/finance/chart/AAPL", json_response(chart([(date(2026, 6, 11), "100")])))
    provider = YahooProvider(base_url=stub.url, timeout=1, clock=lambda: clock)
    provider.daily_history("AAPL", date(2026, 6, 8), date(2026, 6, 11))
    assert stub.requests_to("/v8/finance/chart/AAPL")[0].param("period2") == str(int(period2.timestamp()))


def test_a_reverse_split_divides_the_earlier_closes(stub, yahoo):
    # Given a 1-for-10 reverse split on 10 June: Yahoo shows earlier closes ten times higher
    body = chart([(date(2026, 6, 9), "52.3"), (date(2026, 6, 10), "51.8")], splits=[(date(2026, 6, 10), 1, 10)])
    stub.route("/v8/finance/chart/AAPL", json_response(body))

    bars = yahoo.daily_history("AAPL", date(2026, 6, 9), date(2026, 6, 10))

    assert closes(bars) == [(date(2026, 6, 9), Decimal("5.23")), (date(2026, 6, 10), Decimal("51.8"))]


def test_several_splits_multiply_for_each_later_one(stub, yahoo):
    # Given a 3:1 split on 3 June and a 1:4 reverse split on 10 June
    body = chart(
        [(date(2026, 6, 2), "10"), (date(2026, 6, 3), "10"), (date(2026, 6, 9), "10"), (date(2026, 6, 10), "10")],
        splits=[(date(2026, 6, 3), 3, 1), (date(2026, 6, 10), 1, 4)],
    )
    stub.route("/v8/finance/chart/AAPL", json_response(body))

    bars = yahoo.daily_history("AAPL", date(2026, 6, 2), date(2026, 6, 10))

    # Then before both: × 3 × 1/4; between them: × 1/4; from the last one on: as sent
    assert closes(bars) == [
        (date(2026, 6, 2), Decimal("7.5")),
        (date(2026, 6, 3), Decimal("2.5")),
        (date(2026, 6, 9), Decimal("2.5")),
        (date(2026, 6, 10), Decimal("10")),
    ]


@pytest.mark.parametrize(
    ("close", "numerator", "denominator", "expected"),
    [
        ("100", 2, 3, "66.666667"),  # × 2/3 does not end: exact until the one rounding
        ("1.234565", 1, 2, "0.617283"),  # 0.6172825 exactly: half up (half even would give ...282)
        ("3.1415926535", 1, 1, "3.141593"),  # a 1:1 "split" changes nothing but the places
    ],
)
def test_unadjusted_closes_are_exact_then_rounded_half_up_to_six_places(stub, yahoo, close, numerator,
                                                                        denominator, expected):
    body = chart([(date(2026, 6, 9), close)], splits=[(date(2026, 6, 10), numerator, denominator)])
    stub.route("/v8/finance/chart/AAPL", json_response(body))
    (bar,) = yahoo.daily_history("AAPL", date(2026, 6, 9), date(2026, 6, 9))
    assert str(bar.close) == expected


def test_a_close_too_small_to_store_once_unadjusted_is_missing_not_zero(stub, yahoo):
    body = chart([(date(2026, 6, 9), "0.000004"), (date(2026, 6, 10), "0.5")], splits=[(date(2026, 6, 10), 1, 10)])
    stub.route("/v8/finance/chart/AAPL", json_response(body))
    bars = yahoo.daily_history("AAPL", date(2026, 6, 9), date(2026, 6, 10))
    assert closes(bars) == [(date(2026, 6, 10), Decimal("0.5"))]


def test_the_ratio_is_read_from_split_ratio_when_numerator_and_denominator_are_absent(stub, yahoo):
    stamp = int(datetime(2026, 6, 10, 9, 30, tzinfo=NEW_YORK).timestamp())
    body = chart([(date(2026, 6, 9), "50"), (date(2026, 6, 10), "50")]).replace(
        '"indicators"', f'"events":{{"splits":{{"{stamp}":{{"date":{stamp},"splitRatio":"3:2"}}}}}},"indicators"'
    )
    stub.route("/v8/finance/chart/AAPL", json_response(body))
    bars = yahoo.daily_history("AAPL", date(2026, 6, 9), date(2026, 6, 10))
    assert closes(bars) == [(date(2026, 6, 9), Decimal("75")), (date(2026, 6, 10), Decimal("50"))]


def test_a_split_dated_after_today_is_not_applied(stub):
    # Given a split event dated 2 July while it is 1 July: no close can be adjusted for it yet
    body = chart([(date(2026, 6, 30), "80"), (date(2026, 7, 1), "81")], splits=[(date(2026, 7, 2), 2, 1)])
    stub.route("/v8/finance/chart/AAPL", json_response(body))
    provider = YahooProvider(base_url=stub.url, timeout=1, clock=lambda: NOW)
    bars = provider.daily_history("AAPL", date(2026, 6, 30), date(2026, 7, 1))
    assert closes(bars) == [(date(2026, 6, 30), Decimal("80")), (date(2026, 7, 1), Decimal("81"))]


def test_dividend_events_alone_change_no_close(stub, yahoo):
    stamp = int(datetime(2026, 6, 10, 9, 30, tzinfo=NEW_YORK).timestamp())
    body = chart([(date(2026, 6, 9), "50"), (date(2026, 6, 10), "49.5")]).replace(
        '"indicators"', f'"events":{{"dividends":{{"{stamp}":{{"amount":0.26,"date":{stamp}}}}}}},"indicators"'
    )
    stub.route("/v8/finance/chart/AAPL", json_response(body))
    bars = yahoo.daily_history("AAPL", date(2026, 6, 9), date(2026, 6, 10))
    assert closes(bars) == [(date(2026, 6, 9), Decimal("50")), (date(2026, 6, 10), Decimal("49.5"))]


@pytest.mark.parametrize(
    "splits",
    [
        [(date(2026, 6, 10), 0, 1)],  # a zero ratio
        [(date(2026, 6, 10), "null", 1)],  # no numerator, and a splitRatio of "null:1"
        [(date(2026, 6, 10), -2, 1)],
    ],
)
def test_an_unreadable_split_event_is_transient_never_a_guessed_price(stub, yahoo, splits):
    body = chart([(date(2026, 6, 9), "50")], splits=splits).replace('"null"', "null")
    stub.route("/v8/finance/chart/AAPL", json_response(body))
    with pytest.raises(TransientError, match="split"):
        yahoo.daily_history("AAPL", date(2026, 6, 9), date(2026, 6, 9))


@pytest.mark.parametrize("events", ['"events":[]', '"events":{"splits":[]}', '"events":{"splits":{"1":7}}'])
def test_malformed_events_are_transient(stub, yahoo, events):
    body = chart([(date(2026, 6, 9), "50")]).replace('"indicators"', f'{events},"indicators"')
    stub.route("/v8/finance/chart/AAPL", json_response(body))
    with pytest.raises(TransientError):
        yahoo.daily_history("AAPL", date(2026, 6, 9), date(2026, 6, 9))


def test_split_dates_are_taken_in_the_exchange_zone(stub, yahoo):
    # Given a Sydney listing: sessions and the split event are stamped at the 10:00 AEDT open,
    # which is the previous day in UTC (a UTC reading would date the split a day early and leave
    # the session before it unadjusted)
    sydney = ZoneInfo("Australia/Sydney")

    def stamp(day: date) -> int:
        return int(datetime(day.year, day.month, day.day, 10, 0, tzinfo=sydney).timestamp())

    days = [date(2026, 2, 17), date(2026, 2, 18)]
    body = (
        '{"chart":{"result":[{"meta":{"currency":"AUD","symbol":"CBA.AX","gmtoffset":39600,'
        f'"exchangeTimezoneName":"Australia/Sydney"}},"timestamp":{json.dumps([stamp(d) for d in days])},'
        f'"events":{{"splits":{{"{stamp(days[1])}":{{"date":{stamp(days[1])},"numerator":2,"denominator":1,'
        '"splitRatio":"2:1"}}},"indicators":{"quote":[{"close":[60.5,61.0]}]}}],"error":null}}'
    )
    stub.route("/v8/finance/chart/CBA.AX", json_response(body))

    bars = yahoo.daily_history("CBA.AX", days[0], days[1])

    assert closes(bars) == [(days[0], Decimal("121")), (days[1], Decimal("61"))]
    assert datetime.fromtimestamp(stamp(days[1]), UTC).date() == days[1] - timedelta(days=1)
